// The request path's pure pieces with the real tokenizer: the chat template and model names, the
// output pipeline (stop strings and placeholders split across tokens), admission control, and the
// committed default policy's routing through a real server (edge-only, no verifier needed).
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TextTokenizer } from '../../../src/inference/tokenizer.js';
import { redact, restore } from '../../../src/policy/redact.js';
import { GenerationAdmission } from '../../../src/runtime/engine/admission.js';
import type { LoadedGeneration } from '../../../src/runtime/engine/generation.js';
import {
  MIN_ACCEPTANCE_SAMPLES,
  ROUND_MAX_AGE_MS,
  RuntimeMetrics,
} from '../../../src/runtime/engine/metrics.js';
import { chunk, deltaWriter, parseModelName, renderChat } from '../../../src/runtime/serve/openai.js';
import { OutputText } from '../../../src/runtime/engine/output.js';
import { DEFAULT_POLICY } from '../../../src/runtime/engine/generation.js';
import { VerifierPool } from '../../../src/runtime/engine/verifier-pool.js';
import { HttpError } from '../../../src/http/http.js';
import { REPO_ROOT } from '../../helpers/cli.js';
import { DRAFT_DIR, loadTestGeneration, makeGenerationDir, startTestRuntime } from './helpers.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

describe('chat template and model names', () => {
  it('renders a transcript the dialogue models continue', () => {
    expect(
      renderChat([
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: [{ type: 'text', text: 'Hello!' }] },
        { role: 'user', content: 'Where is my order?' },
      ]),
    ).toBe('System: Be brief.\nUser: Hi\nAssistant: Hello!\nUser: Where is my order?\nAssistant:');
    // Names pick the speakers, so the fixture's Customer/Agent format is reachable.
    expect(
      renderChat([
        { role: 'user', name: 'Customer', content: 'My package is late.' },
        { role: 'assistant', name: 'Agent', content: 'Sorry! Order number?' },
        { role: 'user', name: 'Customer', content: 'Order 656034.' },
      ]),
    ).toBe('Customer: My package is late.\nAgent: Sorry! Order number?\nCustomer: Order 656034.\nAgent:');
  });

  it('the pre-serialized delta chunk equals the generic one', () => {
    const base = { id: 'chatcmpl-1', created: 1, model: 'draft:support' };
    for (const kind of ['chat', 'completion'] as const) {
      const write = deltaWriter(kind, base);
      for (const text of ['hello', ' "quoted"\n\u0000', 'é😀']) {
        expect(JSON.parse(write(text))).toEqual(chunk(kind, base, { text }));
      }
    }
  });

  it('parses <model> and <model>:<adapter>', () => {
    expect(parseModelName('draft')).toEqual({ model: 'draft', adapter: undefined });
    expect(parseModelName('draft:support')).toEqual({ model: 'draft', adapter: 'support' });
    expect(parseModelName('draft:')).toEqual({ model: 'draft', adapter: '' });
  });
});

describe('output pipeline', () => {
  const tokenizer = TextTokenizer.load(DRAFT_DIR);
  const policy = {
    redaction: {
      enabled: true,
      detectors: ['email', 'card'] as ('email' | 'card')[],
      patterns: [],
    },
  };

  it('restores placeholders split across tokens and never emits a fragment', () => {
    const original = 'mail jane.roe@example.com or card 4111 1111 1111 1111, thanks';
    const { text: redacted, map } = redact(original, policy);
    expect(redacted).toBe('mail <EMAIL_1> or card <CARD_1>, thanks');
    const ids = tokenizer.encode(redacted, { addSpecialTokens: false });
    // The placeholder really is several tokens (otherwise this test would prove nothing).
    expect(ids.length).toBeGreaterThan(12);
    const out = new OutputText(tokenizer, tokenizer.encode('Agent:'), [], map);
    const pieces = ids.map((id) => out.push(id).text);
    pieces.push(out.end());
    expect(pieces.join('')).toBe(restore(tokenizer.decode(ids), map));
    expect(pieces.join('')).toContain('jane.roe@example.com');
    expect(pieces.join('')).toContain('4111 1111 1111 1111');
    for (const p of pieces) expect(p).not.toMatch(/<[A-Z_]*\d*$|^[A-Z_]*_?\d*>/);
    expect(pieces.filter((p) => p === '').length).toBeGreaterThan(2); // held back while incomplete
  });

  it('cuts at a stop string that spans tokens, and restores what came before it', () => {
    const { text: redacted, map } = redact('write to a.b@example.org\nCustomer: next', policy);
    const ids = tokenizer.encode(redacted, { addSpecialTokens: false });
    const out = new OutputText(tokenizer, [], ['\nCustomer:'], map);
    let text = '';
    let stopped = false;
    for (const id of ids) {
      const r = out.push(id);
      text += r.text;
      if (r.stopped) {
        stopped = true;
        break;
      }
    }
    expect(stopped).toBe(true);
    expect(text).toBe('write to a.b@example.org');
    expect(out.end()).toBe('');
  });
});

describe('admission', () => {
  it('admits, queues, refuses with Retry-After, and drops a waiter whose client left', async () => {
    const a = new GenerationAdmission(1, 1);
    const leave1 = await a.enter();
    const ac = new AbortController();
    const waiting = a.enter(ac.signal);
    expect(a.queued).toBe(1);
    await expect(a.enter()).rejects.toSatisfy(
      (e: unknown) => e instanceof HttpError && e.status === 429 && Number(e.headers['retry-after']) >= 1,
    );
    ac.abort();
    await expect(waiting).rejects.toMatchObject({ status: 499 });
    expect(a.queued).toBe(0);
    const next = a.enter();
    leave1();
    leave1(); // idempotent
    const leave2 = await next;
    expect(a.active).toBe(1);
    leave2();
    expect(a.active).toBe(0);
    expect(a.rejected).toBe(1);
  });

  it('the breaker belongs to one verifier: moving to another URL starts closed', () => {
    const pool = new VerifierPool();
    const a = pool.breaker(DEFAULT_POLICY, 'http://a:1');
    for (let i = 0; i < DEFAULT_POLICY.circuitBreaker.failureThreshold; i++) a.recordFailure();
    expect(pool.breaker(DEFAULT_POLICY, 'http://a:1').state).toBe('open');
    expect(pool.breaker(DEFAULT_POLICY, 'http://b:1').state).toBe('closed');
    expect(pool.breakerState).toBe('closed');
  });

  it('running acceptance lapses once its rounds are old, so an abstaining site tries speculation again', () => {
    let now = 0;
    const metrics = new RuntimeMetrics(new Registry(), {
      inFlight: () => 0,
      queued: () => 0,
      now: () => now,
    });
    for (let i = 0; i < 20; i++) metrics.round(8, 1); // acceptance 0.125: the router would abstain
    expect(metrics.acceptance(MIN_ACCEPTANCE_SAMPLES)).toBeCloseTo(0.125);
    // No speculative round while abstaining; after the window the figure is gone (null: no abstain).
    now += ROUND_MAX_AGE_MS + 1;
    expect(metrics.acceptance(MIN_ACCEPTANCE_SAMPLES)).toBeNull();
    for (let i = 0; i < 10; i++) metrics.round(8, 6);
    expect(metrics.acceptance(MIN_ACCEPTANCE_SAMPLES)).toBeCloseTo(0.75);
  });

  it('metrics can be registered again in the same registry (server restarted in-process)', () => {
    const registry = new Registry();
    const sources = { inFlight: () => 0, queued: () => 0 };
    new RuntimeMetrics(registry, sources);
    expect(() => new RuntimeMetrics(registry, sources)).not.toThrow();
  });
});

describe('the committed default policy through the server (no verifier)', () => {
  let gen: LoadedGeneration;
  beforeAll(async () => {
    const policy = readFileSync(join(REPO_ROOT, 'artifacts/policies/default/policy.yaml'), 'utf8');
    gen = await loadTestGeneration(makeGenerationDir({ policy }));
  });
  afterAll(async () => {
    await gen?.dispose();
  });

  it('short prompts stay local; others need the verifier and fall back edge-unverified without one', async () => {
    const rt = await startTestRuntime(gen, undefined);
    try {
      const ask = async (prompt: string) => {
        const r = await fetch(`${rt.server.url}/v1/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'draft', prompt, max_tokens: 4, temperature: 0.7, seed: 1 }),
        });
        expect(r.status).toBe(200);
        return ((await r.json()) as { edgectl: { route: string; reason: string; unverified: boolean } })
          .edgectl;
      };
      const short = await ask('Customer: hi\nAgent:');
      expect(short).toMatchObject({ route: 'edge', unverified: false });
      expect(short.reason).toContain('short-prompts-stay-local');
      const legal = await ask(
        'Customer: Hello, I would like to know whether the contract I signed for the delivery service can be cancelled.\nAgent:',
      );
      // Routed to the cloud by keyword; no verifier configured -> the policy's edge-unverified fallback.
      expect(legal).toMatchObject({ route: 'edge', unverified: true });
      expect(legal.reason).toContain('legal-and-medical-to-cloud');
      expect(rt.server.status().verifier.lastError).toContain('no verifier URL');
      expect(rt.outcomes.map((o) => o.fallback ?? false)).toEqual([false, true]);
    } finally {
      await rt.server.close(0);
    }
  });
});
