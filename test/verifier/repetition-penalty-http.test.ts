/**
 * repetition_penalty on the verifier's wire protocol (issue #17): the server announces the
 * feature, applies the penalty on sessions (speculative greedy over HTTP equals local verifier-only
 * greedy with the penalty) and on /v1/completions, refuses bad values with a 400 naming the
 * field, and a client refuses, before sending anything, a server that does not announce it.
 */
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../../src/foundation/errors.js';
import { collect, generate, generateSpeculative } from '../../src/inference/generate.js';
import { HttpVerifier } from '../../src/verifier/client/http-verifier.js';
import { LmSession } from '../../src/inference/model-session.js';
import { TextTokenizer } from '../../src/inference/tokenizer.js';
import type { CompletionResponse, IdentityResponse } from '../../src/verifier/protocol.js';
import type { RunningVerifier } from '../../src/verifier/server/server.js';
import { DRAFT_DIR, postJson, startTestVerifier, VERIFIER_DIR } from './helpers.js';

const PROMPT = 'Customer: my order my order my order is late.\nAgent:';

describe('repetition_penalty over the verifier protocol', () => {
  let server: RunningVerifier;
  let remote: HttpVerifier;
  let draft: LmSession;
  let local: LmSession;
  let ids: number[];

  beforeAll(async () => {
    server = await startTestVerifier();
    remote = await HttpVerifier.connect(server.url);
    [draft, local] = await Promise.all([LmSession.load(DRAFT_DIR), LmSession.load(VERIFIER_DIR)]);
    ids = TextTokenizer.load(DRAFT_DIR).encode(PROMPT);
  });
  afterAll(async () => {
    remote?.close();
    await server?.close();
    await draft?.release();
    await local?.release();
  });

  it('announces the feature and keeps speculative greedy exact under the penalty', async () => {
    expect(remote.supports('repetition_penalty')).toBe(true);
    const sampling = { temperature: 0, repetitionPenalty: 2 };
    const opts = { maxTokens: 24, eosTokenIds: [] as number[] };
    const reference = await collect(generate(local, ids, { ...opts, sampling }));
    const plain = await collect(generate(local, ids, opts));
    expect(reference.tokens).not.toEqual(plain.tokens);
    for (const k of [2, 4] as const) {
      const spec = await collect(generateSpeculative(draft, remote, ids, { ...opts, sampling, k }));
      expect(spec.tokens, `k=${k}`).toEqual(reference.tokens);
    }
    const chunks: number[] = [];
    for await (const c of remote.complete({
      prompt: ids,
      max_tokens: 24,
      temperature: 0,
      ignore_eos: true,
      repetition_penalty: 2,
    }))
      chunks.push(...(c as CompletionResponse).choices[0]!.token_ids);
    expect(chunks).toEqual(reference.tokens);
  });

  it('refuses out-of-range penalties with a 400 naming the field', async () => {
    const session = await postJson<{ error: { message: string } }>(`${server.url}/v1/sessions`, {
      prompt_ids: ids,
      sampling: { temperature: 0, repetition_penalty: 0 },
    });
    expect(session.status).toBe(400);
    expect(session.body.error.message).toContain('repetition_penalty');
    const completion = await postJson<{ error: { message: string } }>(`${server.url}/v1/completions`, {
      prompt: ids,
      repetition_penalty: 500,
    });
    expect(completion.status).toBe(400);
    expect(completion.body.error.message).toContain('repetition_penalty');
  });

  it('a client refuses a verifier that does not announce the feature, sending nothing', async () => {
    const identity = (await (await fetch(`${server.url}/v1/identity`)).json()) as IdentityResponse;
    const posts: string[] = [];
    const old: Server = createServer((req, res) => {
      if (req.method === 'POST') posts.push(req.url ?? '');
      res.setHeader('content-type', 'application/json');
      // An older server: same identity, no repetition_penalty feature.
      res.end(JSON.stringify({ ...identity, signed: undefined, features: ['first_token'] }));
    });
    await new Promise<void>((resolve) => old.listen(0, '127.0.0.1', resolve));
    const port = (old.address() as { port: number }).port;
    const client = await HttpVerifier.connect(`http://127.0.0.1:${port}`);
    try {
      await expect(
        client.start(ids, { sampling: { temperature: 0, repetitionPenalty: 1.2 } }),
      ).rejects.toThrow(UserError);
      const cloud = client.complete({ prompt: ids, max_tokens: 2, temperature: 0, repetition_penalty: 1.2 });
      await expect(cloud.next()).rejects.toThrow(/repetition_penalty/);
      expect(posts).toEqual([]);
    } finally {
      client.close();
      await new Promise((resolve) => old.close(resolve));
    }
  });
});
