// A site's cloud route against an OpenAI-compatible server that is not edgectl's verifier (issue #18
// item 5): a real site runtime (the fixture draft, the test policy, HTTP) configured with
// `runtime.cloud` and no verifier at all, answering through an independent minimal server
// (test/helpers/mini-openai.ts: plain node:http, CRLF framing, a UTF-8 character split across two
// writes, standard fields only, bearer key checked). The official `openai` client talks to the site.
// Byte-exact text on /v1/completions and /v1/chat/completions, PII redacted before it leaves, then
// each fault — a 500, a connection closed mid-stream, malformed JSON in an event, a stalled stream,
// a wrong key — falls back to the draft (or is a 503 under `fallback: error`), the breaker opens after
// its threshold, and the site keeps serving the next request from the cloud model.
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SiteCloud } from '../../../src/fleet/site-schema.js';
import type { LoadedGeneration } from '../../../src/runtime/engine/generation.js';
import { MINI_ANSWER, MINI_PIECES, startMiniOpenAI, type MiniOpenAI } from '../../helpers/mini-openai.js';
import {
  loadTestGeneration,
  makeGenerationDir,
  startTestRuntime,
  TEST_POLICY,
  type TestRuntime,
} from './helpers.js';

const KEY_ENV = 'EDGECTL_TEST_CLOUD_KEY';
const KEY = 'sk-test-4f1c';
const STANDARD = [
  'model',
  'prompt',
  'messages',
  'max_tokens',
  'temperature',
  'top_p',
  'seed',
  'stream',
  'stream_options',
];

interface Info {
  route: string;
  unverified: boolean;
}
const infoOf = (x: unknown) => (x as { edgectl: Info }).edgectl;

describe('cloud route to an OpenAI-compatible server (runtime.cloud)', () => {
  let mini: MiniOpenAI;
  let gen: LoadedGeneration;
  let rt: TestRuntime;
  let cloud: SiteCloud;
  let client: OpenAI;

  beforeAll(async () => {
    mini = await startMiniOpenAI(KEY);
    process.env[KEY_ENV] = KEY;
    // A high threshold: each fault below is one failure, and none should open the breaker here.
    gen = await loadTestGeneration(
      makeGenerationDir({ policy: TEST_POLICY.replace('failureThreshold: 3', 'failureThreshold: 50') }),
    );
    cloud = { url: mini.url, model: 'hosted-7b', apiKeyEnv: KEY_ENV };
    rt = await startTestRuntime(gen, undefined, { cloud: () => cloud });
    client = new OpenAI({
      baseURL: `${rt.server.url}/v1`,
      apiKey: 'unused',
      maxRetries: 0,
      defaultHeaders: { 'x-edgectl-route': 'cloud' },
    });
  }, 60_000);

  afterAll(async () => {
    delete process.env[KEY_ENV];
    await rt?.server.close(0);
    await gen?.dispose();
    await mini?.close();
  });

  const complete = async () => {
    const stream = await client.completions.create({
      model: 'draft',
      prompt: 'Customer: hello\nAgent:',
      max_tokens: 24,
      stream: true,
    });
    let text = '';
    let last: unknown;
    for await (const c of stream) {
      text += c.choices[0]?.text ?? '';
      last = c;
    }
    return { text, info: infoOf(last) };
  };

  it('completions: byte-exact text through CRLF framing and a split character, standard fields only', async () => {
    mini.mode = 'ok';
    mini.requests.length = 0;
    const r = await complete();
    expect(r.text).toBe(MINI_ANSWER);
    expect(r.info).toMatchObject({ route: 'cloud', unverified: false });
    const sent = mini.requests[0]!;
    expect(sent.path).toBe('/v1/completions');
    expect(sent.authorization).toBe(`Bearer ${KEY}`);
    expect(Object.keys(sent.body).every((k) => STANDARD.includes(k))).toBe(true);
    expect(sent.body).toMatchObject({
      model: 'hosted-7b',
      prompt: 'Customer: hello\nAgent:',
      stream: true,
      max_tokens: 24,
    });

    const whole = await client.completions.create({
      model: 'draft',
      prompt: 'Customer: hi\nAgent:',
      max_tokens: 24,
    });
    expect(whole.choices[0]?.text).toBe(MINI_ANSWER);
    // Re-tokenised with the site's tokenizer: approximate, but counted.
    expect(whole.usage?.completion_tokens).toBeGreaterThan(0);
    expect(rt.outcomes.at(-1)).toMatchObject({ route: 'cloud' });
  });

  it('chat completions: the redacted messages go out, the text comes back byte-exact', async () => {
    cloud = { ...cloud, api: 'chat' };
    mini.requests.length = 0;
    try {
      const stream = await client.chat.completions.create({
        model: 'draft',
        messages: [{ role: 'user', content: 'Reach me at jane.doe@example.com please' }],
        max_tokens: 24,
        stream: true,
      });
      let text = '';
      for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
      expect(text).toBe(MINI_ANSWER);
      const sent = mini.requests[0]!;
      expect(sent.path).toBe('/v1/chat/completions');
      expect(Object.keys(sent.body).every((k) => STANDARD.includes(k))).toBe(true);
      const messages = sent.body.messages as { role: string; content: string }[];
      expect(messages.at(-1)?.role).toBe('user');
      expect(messages.at(-1)?.content).not.toContain('jane.doe@example.com');
      expect(messages.at(-1)?.content).toMatch(/<EMAIL_1>/);
    } finally {
      cloud = { ...cloud, api: 'completions' };
    }
  });

  it('a 500 before any text: the draft answers, marked unverified; then the cloud serves again', async () => {
    mini.mode = 'error500';
    const r = await client.completions.create({
      model: 'draft',
      prompt: 'Customer: hello\nAgent:',
      max_tokens: 8,
    });
    expect(infoOf(r)).toMatchObject({ route: 'edge', unverified: true });
    expect(rt.outcomes.at(-1)).toMatchObject({ route: 'edge', fallback: true });
    expect(rt.logs.join('\n')).not.toContain(KEY);
    expect(await rt.metrics.getSingleMetricAsString('edgectl_runtime_verifier_errors_total')).toMatch(
      /kind="cloud"\} 1/,
    );
    mini.mode = 'ok';
    expect((await complete()).text).toBe(MINI_ANSWER);
  });

  for (const mode of ['close', 'malformed'] as const) {
    it(`${mode === 'close' ? 'a connection closed' : 'malformed JSON in an event'} mid-stream: the draft continues the answer`, async () => {
      mini.mode = mode;
      const r = await complete();
      // The cloud's text so far is kept, byte for byte; the draft continues after it.
      expect(r.text.startsWith(MINI_PIECES[0] + MINI_PIECES[1])).toBe(true);
      expect(r.text).not.toBe(MINI_ANSWER);
      expect(r.info).toMatchObject({ route: 'cloud', unverified: true });
      expect(rt.outcomes.at(-1)).toMatchObject({ route: 'cloud', fallback: true });
      const errors = await rt.metrics.getSingleMetricAsString('edgectl_runtime_verifier_errors_total');
      expect(errors).toMatch(/kind="cloud_protocol"\} [1-9]/);
      mini.mode = 'ok';
      expect((await complete()).text).toBe(MINI_ANSWER);
    });
  }

  it('a stream that stalls costs one policy timeout, then the draft continues', async () => {
    mini.mode = 'stall';
    const t0 = performance.now();
    const r = await complete();
    const ms = performance.now() - t0;
    expect(r.info).toMatchObject({ route: 'cloud', unverified: true });
    expect(ms).toBeGreaterThan(1400);
    expect(ms).toBeLessThan(6000);
    mini.mode = 'ok';
  });

  it('a wrong key (401) and a missing key variable fall back, naming the variable', async () => {
    process.env[KEY_ENV] = 'sk-wrong';
    try {
      const r = await client.completions.create({
        model: 'draft',
        prompt: 'Customer: hello\nAgent:',
        max_tokens: 8,
      });
      expect(infoOf(r)).toMatchObject({ route: 'edge', unverified: true });
      expect(rt.logs.join('\n')).not.toContain('sk-wrong');
      delete process.env[KEY_ENV];
      const r2 = await client.completions.create({
        model: 'draft',
        prompt: 'Customer: hello\nAgent:',
        max_tokens: 8,
      });
      expect(infoOf(r2)).toMatchObject({ route: 'edge', unverified: true });
    } finally {
      process.env[KEY_ENV] = KEY;
    }
    expect((await complete()).text).toBe(MINI_ANSWER);
  });

  it('an unreachable server falls back to the draft', async () => {
    const saved = cloud;
    cloud = { ...cloud, url: 'http://127.0.0.1:1/v1' };
    try {
      const r = await client.completions.create({
        model: 'draft',
        prompt: 'Customer: hello\nAgent:',
        max_tokens: 8,
      });
      expect(infoOf(r)).toMatchObject({ route: 'edge', unverified: true });
      expect(await rt.metrics.getSingleMetricAsString('edgectl_runtime_verifier_errors_total')).toMatch(
        /kind="cloud_unreachable"\} 1/,
      );
    } finally {
      cloud = saved;
    }
  });

  it('policy fallback "cloud": a dead verifier sends a speculative request to the cloud model; if that fails too, the draft', async () => {
    const viaCloud = await loadTestGeneration(
      makeGenerationDir({ policy: TEST_POLICY.replace('fallback: edge-unverified', 'fallback: cloud') }),
      gen,
    );
    const own = await startTestRuntime(viaCloud, 'http://127.0.0.1:1', { cloud: () => cloud });
    const ask = async () => {
      const r = await fetch(`${own.server.url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-edgectl-route': 'speculative' },
        body: JSON.stringify({ model: 'draft', prompt: 'Customer: hello\nAgent:', max_tokens: 24 }),
      });
      expect(r.status).toBe(200);
      const body = (await r.json()) as { choices: { text: string }[]; edgectl: Info };
      return {
        text: body.choices[0]?.text,
        info: body.edgectl,
        unverifiedHeader: r.headers.get('x-edgectl-unverified'),
      };
    };
    try {
      mini.mode = 'ok';
      const r = await ask();
      expect(r.text).toBe(MINI_ANSWER);
      expect(r.info).toMatchObject({ route: 'cloud', unverified: false });
      expect(r.unverifiedHeader).toBeNull();
      expect(own.outcomes.at(-1)).toMatchObject({ route: 'cloud', fallback: true });
      mini.mode = 'error500';
      const r2 = await ask();
      expect(r2.info).toMatchObject({ route: 'edge', unverified: true });
      expect(r2.unverifiedHeader).toBe('true');
    } finally {
      mini.mode = 'ok';
      await own.server.close(0);
      await viaCloud.dispose();
    }
  });

  it('with fallback "error": a 503 per failure, and the breaker opens after its threshold without calling the server', async () => {
    const strict = await loadTestGeneration(
      makeGenerationDir({
        policy: TEST_POLICY.replace('fallback: edge-unverified', 'fallback: error').replace(
          'failureThreshold: 3',
          'failureThreshold: 2',
        ),
      }),
      gen,
    );
    const own = await startTestRuntime(strict, undefined, { cloud: () => cloud });
    const body = JSON.stringify({ model: 'draft', prompt: 'Customer: hello\nAgent:', max_tokens: 8 });
    const post = () =>
      fetch(`${own.server.url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-edgectl-route': 'cloud' },
        body,
      });
    try {
      mini.mode = 'error500';
      const before = mini.requests.length;
      for (let i = 0; i < 2; i++) {
        const r = await post();
        expect(r.status).toBe(503);
        const e = ((await r.json()) as { error: { code: string; message: string } }).error;
        expect(e.code).toBe('verifier_unavailable');
        expect(e.message).toContain('upstream exploded');
      }
      expect(mini.requests.length - before).toBe(2);
      const third = await post();
      expect(third.status).toBe(503);
      expect(((await third.json()) as { error: { message: string } }).error.message).toMatch(
        /circuit breaker open: the cloud model failed recently/,
      );
      expect(mini.requests.length - before).toBe(2);
    } finally {
      mini.mode = 'ok';
      await own.server.close(0);
      await strict.dispose();
    }
  });
});
