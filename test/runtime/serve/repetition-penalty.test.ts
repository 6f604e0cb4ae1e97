// repetition_penalty through the site runtime (issue #17) against a real verifier process behind a
// recording proxy: the field is validated (400 naming it), reaches the verifier on the speculative
// (session sampling) and cloud (/v1/completions) routes, keeps speculative greedy output equal to
// cloud greedy output under the penalty, and defaults from the model's generation_config.json.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LoadedGeneration } from '../../../src/runtime/engine/generation.js';
import {
  DRAFT_DIR,
  loadTestGeneration,
  makeGenerationDir,
  startRecordingProxy,
  startTestRuntime,
  startVerifierProcess,
  TEST_POLICY,
  type RecordingProxy,
  type TestRuntime,
  type VerifierProcess,
} from './helpers.js';

async function post(url: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

type Completion = { choices: { text: string }[]; edgectl: { route: string; reason: string } };
type OpenAiError = { error: { message: string; param?: string } };

/** A generation whose draft model says `repetition_penalty: 2` in its generation_config.json. */
function penalisedGenerationDir(): string {
  const model = mkdtempSync(join(tmpdir(), 'edgectl-rp-model-'));
  for (const f of readdirSync(DRAFT_DIR)) {
    if (f !== 'generation_config.json') symlinkSync(join(DRAFT_DIR, f), join(model, f));
  }
  const gen = JSON.parse(readFileSync(join(DRAFT_DIR, 'generation_config.json'), 'utf8')) as object;
  writeFileSync(join(model, 'generation_config.json'), JSON.stringify({ ...gen, repetition_penalty: 2 }));
  const dir = mkdtempSync(join(tmpdir(), 'edgectl-rp-gen-'));
  symlinkSync(model, join(dir, 'model'));
  mkdirSync(join(dir, 'adapters'));
  mkdirSync(join(dir, 'policy'));
  writeFileSync(join(dir, 'policy', 'policy.yaml'), TEST_POLICY);
  return dir;
}

describe('repetition_penalty on the site runtime', () => {
  let verifier: VerifierProcess;
  let proxy: RecordingProxy;
  let gen: LoadedGeneration;
  let rt: TestRuntime;
  // Repeated prompt words make the penalty change the verifier's greedy answer within 24 tokens.
  const prompt = 'Customer: my order my order my order is late.\nAgent:';

  beforeAll(async () => {
    verifier = await startVerifierProcess();
    proxy = await startRecordingProxy(verifier.url);
    gen = await loadTestGeneration(makeGenerationDir());
    rt = await startTestRuntime(gen, proxy.url);
  });
  afterAll(async () => {
    await rt?.server.close(1000);
    await gen?.dispose();
    await proxy?.close();
    await verifier?.kill('SIGTERM');
  });

  const complete = async (route: string, extra: Record<string, unknown>, server = rt) => {
    const r = await post(
      `${server.server.url}/v1/completions`,
      { model: 'draft', prompt, max_tokens: 24, temperature: 0, ignore_eos: true, ...extra },
      { 'x-edgectl-route': route },
    );
    expect(r.status).toBe(200);
    const body = r.json as unknown as Completion;
    expect(body.edgectl.route, body.edgectl.reason).toBe(route);
    return body.choices[0]!.text;
  };

  it('refuses an out-of-range penalty with a 400 naming repetition_penalty', async () => {
    for (const [path, body] of [
      ['/v1/completions', { model: 'draft', prompt: 'Hi', repetition_penalty: 0 }],
      [
        '/v1/chat/completions',
        { model: 'draft', messages: [{ role: 'user', content: 'Hi' }], repetition_penalty: 1000 },
      ],
    ] as const) {
      const r = await post(`${rt.server.url}${path}`, body);
      expect(r.status, path).toBe(400);
      expect((r.json as unknown as OpenAiError).error.param).toBe('repetition_penalty');
    }
  });

  it('speculative greedy equals cloud greedy under the penalty, and the verifier received it', async () => {
    const before = proxy.requests.length;
    const spec = await complete('speculative', { repetition_penalty: 2 });
    const cloud = await complete('cloud', { repetition_penalty: 2 });
    const plain = await complete('cloud', {});
    expect(spec).toBe(cloud);
    expect(spec).not.toBe(plain);
    const sent = proxy.requests.slice(before).map((r) => ({ path: r.path, body: r.body }));
    const session = sent.find((r) => r.path === '/v1/sessions');
    expect(JSON.parse(session!.body).sampling.repetition_penalty).toBe(2);
    const completion = sent.find((r) => r.path === '/v1/completions');
    expect(JSON.parse(completion!.body).repetition_penalty).toBe(2);
  });

  it("defaults to the model's generation_config.json repetition_penalty", async () => {
    const penalised = await loadTestGeneration(penalisedGenerationDir());
    const other = await startTestRuntime(penalised, proxy.url);
    try {
      for (const route of ['edge', 'speculative']) {
        const byDefault = await complete(route, {}, other);
        expect(byDefault, route).toBe(await complete(route, { repetition_penalty: 2 }));
        expect(byDefault, route).not.toBe(await complete(route, {}));
        // A request can still turn it off.
        expect(await complete(route, { repetition_penalty: 1 }, other)).toBe(await complete(route, {}));
      }
    } finally {
      await other.server.close(1000);
      await penalised.dispose();
    }
  });
});
