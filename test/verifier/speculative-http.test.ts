import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, generate, generateSpeculative } from '../../src/inference/generate.js';
import { HttpVerifier } from '../../src/verifier/client/http-verifier.js';
import { LmSession } from '../../src/inference/model-session.js';
import { TextTokenizer } from '../../src/inference/tokenizer.js';
import { readPromptsFile } from '../../src/bench/prompts.js';
import type { RunningVerifier } from '../../src/verifier/server/server.js';
import type {
  CompletionResponse,
  CreateSessionResponse,
  VerifyResponse,
} from '../../src/verifier/protocol.js';
import { DRAFT_DIR, postJson, ROOT, startTestVerifier, VERIFIER_DIR } from './helpers.js';

describe('speculative decoding against the HTTP verifier', () => {
  let server: RunningVerifier;
  let remote: HttpVerifier;
  let draft: LmSession;
  let local: LmSession;
  let tokenizer: TextTokenizer;

  beforeAll(async () => {
    server = await startTestVerifier();
    remote = await HttpVerifier.connect(server.url, {
      expectTokenizerSha256: server.model.identity.tokenizer.sha256,
    });
    draft = await LmSession.load(DRAFT_DIR);
    local = await LmSession.load(VERIFIER_DIR);
    tokenizer = TextTokenizer.load(DRAFT_DIR);
  });
  afterAll(async () => {
    remote?.close();
    await server?.close();
    await draft?.release();
    await local?.release();
  });

  it('greedy output is token-identical to verifier-only greedy decoding (k = 4)', async () => {
    const prompts = [
      ...readPromptsFile(`${ROOT}/artifacts/prompts/general.jsonl`).slice(0, 2),
      ...readPromptsFile(`${ROOT}/artifacts/prompts/support.jsonl`).slice(0, 2),
    ];
    let rounds = 0;
    let tokens = 0;
    for (const prompt of prompts) {
      const ids = tokenizer.encode(prompt);
      const reference = await collect(generate(local, ids, { maxTokens: 32 }));
      const spec = await collect(generateSpeculative(draft, remote, ids, { maxTokens: 32, k: 4 }));
      expect(spec.tokens).toEqual(reference.tokens);
      expect(spec.done.finishReason).toBe(reference.done.finishReason);
      rounds += spec.done.stats.verifyRounds;
      tokens += spec.tokens.length;
    }
    // The speculation actually happened: fewer verify calls than tokens.
    expect(rounds).toBeGreaterThan(0);
    expect(rounds).toBeLessThan(tokens);
    // Every session was closed on the server.
    expect(server.context.sessions.size).toBe(0);
  });

  it('a micro-batching verifier gives the same tokens with fewer model runs', async () => {
    const batched = await startTestVerifier({ maxBatch: 8 });
    const client = await HttpVerifier.connect(batched.url);
    try {
      const prompts = readPromptsFile(`${ROOT}/artifacts/prompts/general.jsonl`).slice(4, 8);
      const ids = prompts.map((p) => tokenizer.encode(p));
      const reference = await Promise.all(
        ids.map((p) => collect(generate(local, p, { maxTokens: 24, eosTokenIds: [] }))),
      );
      const spec = await Promise.all(
        ids.map((p) =>
          collect(generateSpeculative(draft, client, p, { maxTokens: 24, k: 4, eosTokenIds: [] })),
        ),
      );
      spec.forEach((s, i) => expect(s.tokens).toEqual(reference[i]?.tokens));
      // Completions step all their streams together, so their passes batch even in one process.
      const complete = (p: number[]) =>
        postJson<CompletionResponse>(`${batched.url}/v1/completions`, {
          prompt: p,
          max_tokens: 16,
          temperature: 0,
          ignore_eos: true,
        });
      const before = batched.context.metrics.snapshot();
      const together = await Promise.all(ids.map(complete));
      const after = batched.context.metrics.snapshot();
      together.forEach((r, i) =>
        expect(r.body.choices[0]?.token_ids).toEqual(reference[i]?.tokens.slice(0, 16)),
      );
      expect(after.modelRuns - before.modelRuns).toBeLessThan(after.forwardCalls - before.forwardCalls);
      expect(batched.settings).toMatchObject({ maxBatch: 8, maxConcurrency: 8 });
    } finally {
      client.close();
      await batched.close();
    }
  });

  it('refuses a verifier with another tokenizer, and reports an unreachable one', async () => {
    await expect(
      HttpVerifier.connect(server.url, { expectTokenizerSha256: '0'.repeat(64) }),
    ).rejects.toMatchObject({
      exitCode: 4,
      code: 'E_TOKENIZER_MISMATCH',
    });
    const closed = await startTestVerifier();
    const url = closed.url;
    await closed.close();
    await expect(HttpVerifier.connect(url, { timeoutMs: 2000 })).rejects.toMatchObject({
      exitCode: 1,
      code: 'E_VERIFIER_UNREACHABLE',
    });
  });

  it('retries requests the verifier refused for overload (429 + Retry-After) until they get through', async () => {
    const tight = await startTestVerifier({ maxConcurrency: 1, queueLimit: 0 });
    const client = await HttpVerifier.connect(tight.url, { retries: 20 });
    try {
      // Open eight kept-alive sockets first: server and client share this process, so requests on
      // fresh sockets trickle in one per event-loop turn; on open sockets they arrive together.
      const warm = await Promise.all(Array.from({ length: 8 }, () => client.start([1])));
      await Promise.all(warm.map((s) => s.close()));
      const ids = Array.from({ length: 200 }, (_, i) => 1 + (i % 500));
      const sessions = await Promise.all(Array.from({ length: 8 }, () => client.start(ids)));
      expect(sessions).toHaveLength(8);
      expect(tight.context.metrics.snapshot().rejections).toBeGreaterThan(0);
      await Promise.all(sessions.map((s) => s.close()));
      expect(tight.context.sessions.size).toBe(0);
    } finally {
      client.close();
      await tight.close();
    }
  });

  it('the first token comes with the session (one round trip); a server without the feature still works', async () => {
    expect(remote.identity.features).toContain('first_token');
    const ids = tokenizer.encode(readPromptsFile(`${ROOT}/artifacts/prompts/general.jsonl`)[3] as string);
    const reference = await collect(generate(local, ids, { maxTokens: 12, eosTokenIds: [] }));
    // The wire: first_token with the session, and the first verify drafts after it.
    const created = await postJson<CreateSessionResponse>(`${server.url}/v1/sessions`, {
      prompt_ids: ids,
      first_token: true,
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      first_token: reference.tokens[0],
      eos: false,
      context_tokens: ids.length + 1,
      prompt_tokens: ids.length,
    });
    const round = await postJson<VerifyResponse>(
      `${server.url}/v1/sessions/${created.body.session_id}/verify`,
      { draft_ids: reference.tokens.slice(1, 4) },
    );
    expect(round.body).toMatchObject({ accepted: 3, next_token: reference.tokens[4], positions: 4 });
    // Without the flag the old response shape is unchanged.
    const plain = await postJson<CreateSessionResponse>(`${server.url}/v1/sessions`, { prompt_ids: ids });
    expect(plain.body.first_token).toBeUndefined();
    expect(server.context.sessions.delete(created.body.session_id)).toBe(true);
    expect(server.context.sessions.delete(plain.body.session_id)).toBe(true);
    // The client uses it: same tokens, the first one before any verify round.
    const withFirst = await collect(
      generateSpeculative(draft, remote, ids, { maxTokens: 12, eosTokenIds: [], k: 4 }),
    );
    expect(withFirst.tokens).toEqual(reference.tokens);
    // A client of a server that does not announce the feature never sends the field.
    const older = await HttpVerifier.connect(server.url);
    (older.identity as { features?: string[] }).features = undefined;
    try {
      let first: number | undefined;
      const session = await older.start(ids, { onFirstToken: (t) => (first = t) });
      expect(first).toBeUndefined();
      expect(session.firstToken).toBeUndefined();
      await session.close();
      const without = await collect(
        generateSpeculative(draft, older, ids, { maxTokens: 12, eosTokenIds: [], k: 4 }),
      );
      expect(without.tokens).toEqual(reference.tokens);
      expect(without.done.stats.verifyRounds).toBeGreaterThan(withFirst.done.stats.verifyRounds - 1);
    } finally {
      older.close();
    }
    expect(server.context.sessions.size).toBe(0);
  });

  it('a session the server no longer has is NotFound (exit 3) for the client', async () => {
    const session = await remote.start(tokenizer.encode('Hello'));
    expect(server.context.sessions.delete(session.id)).toBe(true);
    await expect(session.verify({ draft: [1, 2] })).rejects.toMatchObject({ exitCode: 3 });
    await session.close(); // already gone: fine
  });
});
