/**
 * Retrieved passages are redacted like the user's text (issue #20 item 4): an index whose passage
 * holds PII (an email, a card number, an employee id) is queried by a RAG chat on the speculative
 * and cloud routes; a recording proxy in front of a real verifier process shows that no value of
 * the passage reached it (raw bodies and token ids decoded), only placeholders; with an echo
 * verifier (the cloud answer repeats the prompt) the user sees the values restored.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FeedbackContext } from '../../src/feedback/accumulator.js';
import { loadGeneration, type LoadedGeneration } from '../../src/runtime/engine/generation.js';
import {
  startRecordingProxy,
  startTestRuntime,
  startVerifierProcess,
  TEST_CONTEXT,
  type RecordingProxy,
  type TestRuntime,
  type VerifierProcess,
  verifierSawText,
} from '../runtime/serve/helpers.js';
import { ragGenerationDir } from './fixtures.js';

const VALUES = ['dana.ortiz@example.com', '4111 1111 1111 1111', 'EMP-204518'];
const CONTEXT: FeedbackContext = {
  ...TEST_CONTEXT,
  refs: {
    ...TEST_CONTEXT.refs,
    indexes: [{ ref: 'index/hr@1.0.0', manifestDigest: `sha256:${'e'.repeat(64)}` }],
  },
};

async function generation(): Promise<string> {
  return ragGenerationDir('hr', [
    {
      id: 'refund-contact',
      text: `Refund escalations go to Dana Ortiz at ${VALUES[0]}, badge ${VALUES[2]}; the test card is ${VALUES[1]}.`,
      time: '2026-11-01T00:00:00Z',
    },
    {
      id: 'wifi',
      text: 'The store wifi router resets with the button on its back.',
      time: '2026-11-01T00:00:00Z',
    },
  ]);
}

describe('RAG redaction (real verifier process)', () => {
  let verifier: VerifierProcess;
  let proxy: RecordingProxy;
  let gen: LoadedGeneration;
  let rt: TestRuntime;
  let client: OpenAI;

  beforeAll(async () => {
    verifier = await startVerifierProcess();
    proxy = await startRecordingProxy(verifier.url);
    gen = await loadGeneration(await generation(), { id: 'c'.repeat(20), context: CONTEXT });
    rt = await startTestRuntime(gen, proxy.url);
    client = new OpenAI({ baseURL: `${rt.server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  }, 120_000);
  afterAll(async () => {
    await rt?.server.close(1000);
    await gen?.dispose();
    await proxy?.close();
    await verifier?.kill('SIGTERM');
  });

  const ask = (route: 'speculative' | 'cloud', maxTokens: number) =>
    client.chat.completions.create({
      model: 'draft',
      messages: [{ role: 'user', content: 'Who handles refund escalations?' }],
      max_tokens: maxTokens,
      temperature: 0,
      // @ts-expect-error edgectl extension of the request body
      edgectl: { route, retrieval: { index: 'hr', k: 1 } },
    });

  it('no value of a retrieved passage reaches the verifier; placeholders do', async () => {
    proxy.requests.length = 0;
    for (const route of ['speculative', 'cloud'] as const) {
      const res = await ask(route, 6);
      const info = (res as unknown as { edgectl: { citations: string[]; redactions: number; route: string } })
        .edgectl;
      expect(info.citations).toEqual(['refund-contact#0']);
      expect(info.route).toBe(route);
      expect(info.redactions).toBeGreaterThanOrEqual(3);
    }
    const text = verifierSawText(proxy, gen.tokenizer);
    expect(text).toContain('<EMAIL_1>');
    expect(text).toContain('<EMPLOYEE_ID_1>');
    expect(VALUES.filter((v) => text.includes(v) || text.includes(v.replace(/\s/g, '')))).toEqual([]);
  });

  it('the answer restores the values (echo verifier repeats the redacted prompt)', async () => {
    proxy.echoCompletions = true;
    try {
      const res = await ask('cloud', 300);
      const answer = res.choices[0]?.message.content ?? '';
      expect(answer).toContain(VALUES[0]);
      expect(answer).toContain(VALUES[2]);
      expect(answer).not.toMatch(/<EMAIL_\d+>|<EMPLOYEE_ID_\d+>/);
    } finally {
      proxy.echoCompletions = false;
    }
  });
});
