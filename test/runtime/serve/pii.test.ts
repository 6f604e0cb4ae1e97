// PII never leaves the site: generated, valid PII values (emails, phones, Luhn-valid cards, IBANs,
// IPs, national ids, a policy pattern) go through the runtime on the speculative and cloud routes,
// and a recording proxy in front of a real verifier process shows that none of them reached it
// (token ids decoded back to text, and the raw bytes). Then an echo verifier (the proxy answers
// /v1/completions with the prompt's own ids, one token per chunk, so every placeholder arrives split
// across chunks) shows that the user sees each value restored and never a placeholder fragment.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LoadedGeneration } from '../../../src/runtime/engine/generation.js';
import { generateSentences, type PiiSample } from '../../policy/pii-fixtures.js';
import {
  loadTestGeneration,
  makeGenerationDir,
  startRecordingProxy,
  startTestRuntime,
  startVerifierProcess,
  type RecordingProxy,
  type TestRuntime,
  type VerifierProcess,
  verifierSawText,
} from './helpers.js';

interface Case {
  prompt: string;
  values: string[];
}

/** 54 generated sentences (9 per built-in type) plus policy-pattern and adjacency cases. */
function cases(): Case[] {
  const out: Case[] = generateSentences(20261122, 9).map((s) => ({
    prompt: `Customer: ${s.text}\nAgent:`,
    values: s.samples.map((x: PiiSample) => x.value),
  }));
  // Crafted: values glued to punctuation and to each other, a policy pattern, repeats.
  out.push(
    {
      prompt: 'Customer: badge EMP-204518, manager EMP-993001.\nAgent:',
      values: ['EMP-204518', 'EMP-993001'],
    },
    {
      prompt: 'Customer: mail (ana.lima@example.org),card 4111 1111 1111 1111;ip 10.20.30.40.\nAgent:',
      values: ['ana.lima@example.org', '4111 1111 1111 1111', '10.20.30.40'],
    },
    {
      prompt: 'Customer: IBAN DE89370400440532013000 and again DE89370400440532013000!\nAgent:',
      values: ['DE89370400440532013000'],
    },
    {
      prompt: 'Customer: +44 20 7946 0958/+1 (415) 555-2671\nAgent:',
      values: ['+44 20 7946 0958', '+1 (415) 555-2671'],
    },
  );
  return out;
}

describe('PII redaction on the request path (real verifier process)', () => {
  let verifier: VerifierProcess;
  let proxy: RecordingProxy;
  let gen: LoadedGeneration;
  let rt: TestRuntime;
  const all = cases();
  const values = [...new Set(all.flatMap((c) => c.values))];

  beforeAll(async () => {
    verifier = await startVerifierProcess();
    proxy = await startRecordingProxy(verifier.url);
    gen = await loadTestGeneration(makeGenerationDir());
    rt = await startTestRuntime(gen, proxy.url, { maxConcurrent: 4, maxQueue: 64 });
  });
  afterAll(async () => {
    await rt?.server.close(1000);
    await gen?.dispose();
    await proxy?.close();
    await verifier?.kill('SIGTERM');
  });

  it('has at least 50 distinct PII values to test', () => {
    expect(values.length).toBeGreaterThanOrEqual(50);
  });

  it('no PII value reaches the verifier on the speculative or cloud route', async () => {
    proxy.requests.length = 0;
    const results = await Promise.all(
      all.map(async (c, i) => {
        const res = await fetch(`${rt.server.url}/v1/completions`, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'x-edgectl-route': i % 2 === 0 ? 'speculative' : 'cloud',
          },
          body: JSON.stringify({ model: 'draft', prompt: c.prompt, max_tokens: 6, temperature: 0 }),
        });
        return {
          status: res.status,
          body: (await res.json()) as { edgectl: { route: string; redactions: number } },
        };
      }),
    );
    for (const [i, r] of results.entries()) {
      expect(r.status).toBe(200);
      expect(r.body.edgectl.route).toBe(i % 2 === 0 ? 'speculative' : 'cloud');
      expect(r.body.edgectl.redactions).toBeGreaterThanOrEqual(all[i]!.values.length);
    }
    // Everything the verifier received, as text: raw bodies and every token-id array decoded.
    const prompts = verifierSawText(proxy, gen.tokenizer);
    expect(proxy.requests.filter((r) => r.path === '/v1/sessions').length).toBe(Math.ceil(all.length / 2));
    expect(proxy.requests.filter((r) => r.path === '/v1/completions').length).toBe(
      Math.floor(all.length / 2),
    );
    // The verifier saw the redacted prompts (so the check below is about real traffic)...
    expect(prompts).toContain('<EMAIL_1>');
    expect(prompts).toContain('<CARD_1>');
    expect(prompts).toContain('<IBAN_1>');
    expect(prompts).toContain('<EMPLOYEE_ID_2>');
    // ...and not one value, nor a card or IBAN with its separators squeezed out.
    const leaked = values.filter((v) => prompts.includes(v) || prompts.includes(v.replace(/[\s-]/g, '')));
    expect(leaked).toEqual([]);
  });

  it('the user sees every value restored, with placeholders split across stream chunks', async () => {
    proxy.echoCompletions = true;
    try {
      const before = proxy.requests.length;
      for (const c of all) {
        const res = await fetch(`${rt.server.url}/v1/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            model: 'draft',
            prompt: c.prompt,
            max_tokens: 300,
            temperature: 0,
            stream: true,
            edgectl: { route: 'cloud' },
          }),
        });
        expect(res.status).toBe(200);
        const sse = await res.text();
        const chunks = sse
          .split('\n\n')
          .filter((b) => b.startsWith('data: ') && b !== 'data: [DONE]')
          .map((b) => JSON.parse(b.slice(6)) as { choices: { text: string }[]; edgectl?: { route: string } });
        const texts = chunks.map((ch) => ch.choices[0]?.text ?? '');
        const text = texts.join('');
        // The echo repeats the redacted prompt; what the user gets is the original prompt.
        expect(text).toContain(c.prompt.slice('Customer: '.length, -'\nAgent:'.length));
        for (const v of c.values) expect(text).toContain(v);
        expect(text).not.toMatch(/<[A-Z_]+_\d+>/);
        for (const t of texts) expect(t).not.toMatch(/<[A-Z_]*$|^[A-Z_]*\d*>/);
        expect(texts.filter((t) => t !== '').length).toBeGreaterThan(3);
      }
      // The echo verifier itself only ever saw placeholders.
      const echoed = proxy.requests
        .slice(before)
        .filter((r) => r.path === '/v1/completions')
        .map((r) => gen.tokenizer.decode((JSON.parse(r.body) as { prompt: number[] }).prompt))
        .join('\n');
      expect(echoed).toContain('<PHONE_1>');
      expect(values.filter((v) => echoed.includes(v))).toEqual([]);
    } finally {
      proxy.echoCompletions = false;
    }
  });

  it('released every lease', () => {
    expect(rt.source.outstanding).toBe(0);
    expect(rt.source.doubleReleases).toBe(0);
  });
});
