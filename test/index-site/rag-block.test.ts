/**
 * Block rules screen retrieved passages (docs/running-sites.md "Retrieval (RAG)"): a site index
 * holds an internal document naming a blocked codeword; a RAG chat that retrieves it on the
 * speculative and cloud routes is still answered, from the other passages, without citing it, and a
 * recording proxy in front of a real verifier process shows that the passage's text never reached
 * the verifier (raw bodies and token ids decoded) while the remaining passage did. The response
 * names the withholding rule, feedback and `/metrics` count it, and when every passage retrieved is
 * withheld the chat is answered without retrieved context.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadGeneration, type LoadedGeneration } from '../../src/runtime/engine/generation.js';
import type { RetrievalInfo } from '../../src/runtime/engine/retrieval.js';
import {
  startRecordingProxy,
  startTestRuntime,
  startVerifierProcess,
  TEST_CONTEXT,
  TEST_POLICY,
  type RecordingProxy,
  type TestRuntime,
  type VerifierProcess,
  verifierSawText,
} from '../runtime/serve/helpers.js';
import { ragGenerationDir } from './fixtures.js';

const TIME = '2026-11-01T00:00:00Z';
/** The test policy with a keyword rule for an internal codeword (case-folded: the passage shouts it). */
const POLICY = TEST_POLICY.replace(
  'block:\n',
  'block:\n  - name: codewords\n    keywords: [blueheron]\n    message: That project is not discussed here.\n',
);
const DOCS = [
  {
    id: 'till-reset',
    text: 'To reset the till hold its power key for ten seconds, then sign in again.',
    time: TIME,
  },
  {
    id: 'till-roadmap',
    text: 'Project BLUEHERON replaces the till firmware in March; a till reset will then take one key press.',
    time: TIME,
  },
  { id: 'wifi', text: 'The store wifi router resets with the button on its back.', time: TIME },
];

type Edgectl = { citations: string[]; retrieval: RetrievalInfo; route: string };
const edgectlOf = (res: unknown) => (res as { edgectl: Edgectl }).edgectl;

describe('block rules withhold retrieved passages (real verifier process)', () => {
  let verifier: VerifierProcess;
  let proxy: RecordingProxy;
  let gen: LoadedGeneration;
  let rt: TestRuntime;
  let client: OpenAI;

  beforeAll(async () => {
    verifier = await startVerifierProcess();
    proxy = await startRecordingProxy(verifier.url);
    gen = await loadGeneration(await ragGenerationDir('kb', DOCS, POLICY), {
      id: 'd'.repeat(20),
      context: TEST_CONTEXT,
    });
    rt = await startTestRuntime(gen, proxy.url);
    client = new OpenAI({ baseURL: `${rt.server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  }, 120_000);
  afterAll(async () => {
    await rt?.server.close(1000);
    await gen?.dispose();
    await proxy?.close();
    await verifier?.kill('SIGTERM');
  });

  const ask = (route: 'speculative' | 'cloud' | 'edge', question: string, k: number) =>
    client.chat.completions.create({
      model: 'draft',
      messages: [{ role: 'user', content: question }],
      max_tokens: 6,
      temperature: 0,
      // @ts-expect-error edgectl extension of the request body
      edgectl: { route, retrieval: { index: 'kb', k } },
    });

  const verifierSaw = () => verifierSawText(proxy, gen.tokenizer);

  it('answers from the other passages; the blocked one is not cited and never reaches the verifier', async () => {
    proxy.requests.length = 0;
    const before = rt.outcomes.length;
    for (const route of ['speculative', 'cloud'] as const) {
      const res = await ask(route, 'How do I reset the till?', 3);
      const info = edgectlOf(res);
      expect(info.route).toBe(route);
      expect(res.choices[0]?.finish_reason).not.toBe('content_filter');
      expect(info.citations).toContain('till-reset#0');
      expect(info.citations).not.toContain('till-roadmap#0');
      expect(info.retrieval).toMatchObject({
        passages: info.citations.length,
        withheld: 1,
        withheldBy: [{ rule: 'codewords', passages: 1 }],
      });
      // Rule names and counts only: the response never carries the withheld text.
      expect(JSON.stringify(res)).not.toMatch(/blueheron|firmware/i);
    }
    const text = verifierSaw();
    expect(text).toContain('power key'); // the remaining passage did reach it
    expect(text).not.toMatch(/blueheron|firmware|till-roadmap/i);
    const withheld = rt.outcomes.slice(before).map((o) => o.retrieval?.withheld);
    expect(withheld).toEqual([[{ rule: 'codewords', passages: 1 }], [{ rule: 'codewords', passages: 1 }]]);
    expect(await rt.metrics.metrics()).toMatch(
      /edgectl_runtime_retrieval_withheld_total\{rule="codewords"\} 2\b/,
    );
  });

  it('answers without retrieved context when every passage retrieved is withheld', async () => {
    const question = 'When is the till firmware replaced in March?';
    const res = await ask('edge', question, 1);
    const info = edgectlOf(res);
    expect(info.citations).toEqual([]);
    expect(info.retrieval).toMatchObject({
      passages: 0,
      withheld: 1,
      withheldBy: [{ rule: 'codewords', passages: 1 }],
    });
    expect(res.choices[0]?.message.content).toBeTypeOf('string');
    const plain = await client.chat.completions.create({
      model: 'draft',
      messages: [{ role: 'user', content: question }],
      max_tokens: 1,
      // @ts-expect-error edgectl extension of the request body
      edgectl: { route: 'edge' },
    });
    // Nothing was attached: the prompt is the question alone.
    expect(res.usage?.prompt_tokens).toBe(plain.usage?.prompt_tokens);
  });
});
