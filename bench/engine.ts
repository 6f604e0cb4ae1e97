/**
 * Inference engine benchmark (`npm run bench:engine`): prints one JSON object.
 *
 * 1. Draft decoding speed, one stream, greedy, through the real `generate` loop (target >= 1000
 *    tok/s); baseline in the same run: the bare ONNX Runtime session.run loop with the same feeds
 *    (what the engine adds on top), and the same loop with the `support` LoRA adapter fed.
 * 2. Verifier cost of scoring k = 4 drafted tokens (5 positions: the pending token + 4 drafts) vs a
 *    one-token step at the same context (target <= 2x), and the cost of a KV rollback.
 * 3. Greedy speculative decoding on artifacts/prompts/*.jsonl (k = 4 and adaptive k): acceptance
 *    rate, tokens per verify round, verifier passes per output token; baseline in the same run:
 *    verifier-only greedy decoding of the same prompts (tokens/s and passes per token = 1).
 * 4. Issue #17 (engine-variants.ts): fp32 against q4 of the same weights (fixture draft, the
 *    SmolLM2-shaped family fixture, a generated SmolLM2-135M-shaped export), transformers.js as a
 *    peer on the same files, and the chat template's cost per request. `BENCH_ENGINE_ONLY=variants`
 *    runs this section alone.
 *
 * Timings are medians over repeats, since the CI machine is shared. Env: BENCH_PROMPTS (prompts per
 * domain, default 32), BENCH_TOKENS (tokens per prompt, default 32), EDGECTL_FIXTURES_DIR.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { InferenceSession, Tensor } from 'onnxruntime-node';
import {
  collect,
  generate,
  generateSpeculative,
  InProcessVerifier,
  LmSession,
  loadLoraAdapter,
  TextTokenizer,
  type GenerationStats,
  type LoraFeeds,
} from '../src/inference/index.js';
import { variantsBench } from './engine-variants.js';

const ROOT = process.env.EDGECTL_FIXTURES_DIR ?? join(import.meta.dirname, '..', 'artifacts');
const PROMPTS = Number(process.env.BENCH_PROMPTS ?? 32);
const TOKENS = Number(process.env.BENCH_TOKENS ?? 32);
const now = (): number => performance.now();

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

const round = (x: number, d = 2): number => Number(x.toFixed(d));

function loadPrompts(domain: string): string[] {
  return readFileSync(join(ROOT, 'prompts', `${domain}.jsonl`), 'utf8')
    .split('\n')
    .filter(Boolean)
    .slice(0, PROMPTS)
    .map((l) => (JSON.parse(l) as { prompt: string }).prompt);
}

/** Tokens/s of the real generate loop (median of repeats). */
async function draftSpeed(model: LmSession, ids: number[], lora?: LoraFeeds): Promise<number> {
  const rates: number[] = [];
  for (let r = 0; r < 7; r++) {
    const t0 = now();
    const out = await collect(
      generate(model, ids, { maxTokens: 256, eosTokenIds: [], ...(lora ? { lora } : {}) }),
    );
    rates.push((out.tokens.length * 1000) / (now() - t0));
  }
  return median(rates);
}

/** Tokens/s of a bare session.run loop with hand-built feeds: the floor under the engine. */
async function rawOrtSpeed(dir: string, model: LmSession, ids: number[]): Promise<number> {
  const session = await InferenceSession.create(join(dir, 'model.onnx'), {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
  });
  const { numLayers, numKeyValueHeads: h, headDim: d } = model.shape;
  const zeroLora = model.inputs.lora
    ? Object.fromEntries(
        [...model.inputs.lora.slots.values()].flatMap((s) => [
          [
            `lora.${s.layer}.${s.module}.A`,
            new Tensor('float32', new Float32Array(s.inFeatures), [1, s.inFeatures]),
          ],
          [
            `lora.${s.layer}.${s.module}.B`,
            new Tensor('float32', new Float32Array(s.outFeatures), [s.outFeatures, 1]),
          ],
        ]),
      )
    : {};
  const rates: number[] = [];
  for (let r = 0; r < 5; r++) {
    let past: Record<string, Tensor> = {};
    for (let i = 0; i < numLayers; i++)
      for (const kv of ['key', 'value'])
        past[`past_key_values.${i}.${kv}`] = new Tensor('float32', new Float32Array(0), [1, h, 0, d]);
    let input = ids;
    let len = 0;
    let t0 = 0;
    for (let step = 0; step <= 256; step++) {
      if (step === 1) t0 = now();
      const total = len + input.length;
      const out = await session.run({
        input_ids: new Tensor('int64', BigInt64Array.from(input.map(BigInt)), [1, input.length]),
        attention_mask: new Tensor('int64', new BigInt64Array(total).fill(1n), [1, total]),
        position_ids: new Tensor('int64', BigInt64Array.from(input.map((_, j) => BigInt(len + j))), [
          1,
          input.length,
        ]),
        ...past,
        ...zeroLora,
      });
      const logits = (out.logits as Tensor).data as Float32Array;
      const last = logits.subarray(logits.length - model.vocabSize);
      let best = 0;
      for (let v = 1; v < last.length; v++) if ((last[v] as number) > (last[best] as number)) best = v;
      past = {};
      for (let i = 0; i < numLayers; i++)
        for (const kv of ['key', 'value'])
          past[`past_key_values.${i}.${kv}`] = out[`present.${i}.${kv}`] as Tensor;
      len = total;
      input = [best];
    }
    rates.push((256 * 1000) / (now() - t0));
  }
  await session.release();
  return median(rates);
}

/**
 * Cost of a verifier pass over k + 1 = 5 new tokens vs 1 token at the same context. The two are
 * measured in alternation so both see the same machine load; the ratio is the median of pairs.
 */
async function verifierCost(model: LmSession, ids: number[]): Promise<Record<string, number>> {
  const prefix = await model.forward(ids);
  const time = async (n: number): Promise<number> => {
    const t0 = now();
    await model.forward(ids.slice(0, n), prefix.cache);
    return now() - t0;
  };
  for (let r = 0; r < 10; r++) await time(r % 2 ? 1 : 5);
  const ones: number[] = [];
  const fives: number[] = [];
  const ratios: number[] = [];
  for (let r = 0; r < 150; r++) {
    let one: number;
    let five: number;
    if (r % 2 === 0) {
      one = await time(1);
      five = await time(5);
    } else {
      five = await time(5);
      one = await time(1);
    }
    ones.push(one);
    fives.push(five);
    ratios.push(five / one);
  }
  const rollback: number[] = [];
  for (let r = 0; r < 60; r++) {
    const t0 = now();
    prefix.cache.truncate(ids.length - 2 - (r % 3)).pastTensors();
    rollback.push(now() - t0);
  }
  return {
    context: ids.length,
    one_token_ms: round(median(ones), 3),
    k4_pass_ms: round(median(fives), 3),
    k4_vs_one_token: round(median(ratios)),
    kv_rollback_ms: round(median(rollback), 3),
  };
}

interface SpecSummary {
  prompts: number;
  tokens: number;
  acceptance_rate: number;
  tokens_per_verify_round: number;
  verifier_passes_per_token: number;
  tok_s: number;
}

function summarize(stats: GenerationStats[], ms: number): SpecSummary {
  const sum = (f: (s: GenerationStats) => number): number => stats.reduce((a, s) => a + f(s), 0);
  const tokens = sum((s) => s.tokens);
  const rounds = sum((s) => s.verifyRounds);
  const drafted = sum((s) => s.drafted);
  const accepted = sum((s) => s.accepted);
  return {
    prompts: stats.length,
    tokens,
    acceptance_rate: round(drafted ? accepted / drafted : 0, 3),
    tokens_per_verify_round: round(rounds ? 1 + accepted / rounds : 1, 3),
    // +1 per prompt: the prefill pass at session start.
    verifier_passes_per_token: round(rounds ? (rounds + stats.length) / tokens : 1, 3),
    tok_s: round((tokens * 1000) / ms, 1),
  };
}

async function speculative(
  draft: LmSession,
  verifier: InProcessVerifier,
  prompts: number[][],
  k: number | 'auto',
  lora?: LoraFeeds,
): Promise<SpecSummary> {
  const stats: GenerationStats[] = [];
  const t0 = now();
  for (const ids of prompts) {
    const out = await collect(
      generateSpeculative(draft, verifier, ids, { maxTokens: TOKENS, k, ...(lora ? { lora } : {}) }),
    );
    stats.push(out.done.stats);
  }
  return summarize(stats, now() - t0);
}

async function verifierOnly(model: LmSession, prompts: number[][]): Promise<SpecSummary> {
  const stats: GenerationStats[] = [];
  const t0 = now();
  for (const ids of prompts)
    stats.push((await collect(generate(model, ids, { maxTokens: TOKENS }))).done.stats);
  return summarize(stats, now() - t0);
}

async function main(): Promise<void> {
  if (process.env.BENCH_ENGINE_ONLY === 'variants') {
    const result = { bench: 'engine', fixtures: ROOT, issue17_variants: await variantsBench(ROOT) };
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return;
  }
  const draftDir = join(ROOT, 'models', 'draft');
  const verifierDir = join(ROOT, 'models', 'verifier');
  const [draft, verifierModel] = await Promise.all([LmSession.load(draftDir), LmSession.load(verifierDir)]);
  const verifier = new InProcessVerifier(verifierModel);
  const tok = TextTokenizer.load(draftDir);
  const support = loadLoraAdapter(join(ROOT, 'adapters', 'support'), draft.inputs.lora);
  const bad = loadLoraAdapter(join(ROOT, 'adapters', 'support-bad'), draft.inputs.lora);
  const general = loadPrompts('general').map((p) => tok.encode(p));
  const supportPrompts = loadPrompts('support').map((p) => tok.encode(p));
  const probe = general[0] as number[];

  const engine = await draftSpeed(draft, probe);
  const raw = await rawOrtSpeed(draftDir, draft, probe);
  const withLora = await draftSpeed(draft, probe, support.feeds);
  const longContext = [...supportPrompts[0]!, ...supportPrompts[1]!, ...supportPrompts[2]!].slice(0, 96);

  const result = {
    bench: 'engine',
    fixtures: ROOT,
    draft_decode: {
      target_tok_s: 1000,
      engine_tok_s: round(engine, 1),
      baseline_raw_ort_tok_s: round(raw, 1),
      engine_vs_raw: round(engine / raw),
      with_support_lora_tok_s: round(withLora, 1),
      lora_overhead: round(engine / withLora - 1, 3),
    },
    verifier_pass: { target_k4_vs_one_token: 2, ...(await verifierCost(verifierModel, longContext)) },
    greedy_speculative: {
      tokens_per_prompt: TOKENS,
      baseline_verifier_only: {
        general: await verifierOnly(verifierModel, general),
        support: await verifierOnly(verifierModel, supportPrompts),
      },
      k4: {
        general: await speculative(draft, verifier, general, 4),
        support: await speculative(draft, verifier, supportPrompts, 4),
        support_with_support_lora: await speculative(draft, verifier, supportPrompts, 4, support.feeds),
        support_with_support_bad_lora: await speculative(draft, verifier, supportPrompts, 4, bad.feeds),
      },
      adaptive_k: {
        general: await speculative(draft, verifier, general, 'auto'),
        support_with_support_lora: await speculative(draft, verifier, supportPrompts, 'auto', support.feeds),
      },
    },
    issue17_variants: await variantsBench(ROOT),
  };
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  await Promise.all([draft.release(), verifierModel.release()]);
}

await main();
