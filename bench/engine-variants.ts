/**
 * Issue #17 part of `npm run bench:engine`: graph variants and a peer engine, plus the chat
 * template's cost.
 *
 * Draft decode, one stream, greedy, 128 tokens from a short prompt, single-threaded: fp32 against
 * q4 (`MatMulNBits`) of the same weights, on the fixture draft, the SmolLM2-shaped family fixture
 * and a SmolLM2-135M-shaped export with random weights that the bench generates with the tools/
 * generator (`/usr/bin/python3 -m tools.fixtures.q4 --smollm2-135m`, cached under
 * node_modules/.cache; a row says why it was skipped when no Python with onnx and numpy is
 * there). Peer in the same run: transformers.js (`@huggingface/transformers`, the same
 * onnxruntime-node) on the same files and prompt, greedy; its tokens must equal edgectl's for fp32.
 * Each figure is the median of `BENCH_VARIANT_REPEATS` (3) runs, whole generation (prefill
 * included) over 128 tokens. Also: rendering + encoding one chat with the model's own template
 * (µs, median of 2000) against a whole edge chat request of 32 tokens.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { collect, generate, LmSession, TextTokenizer } from '../src/inference/index.js';
import { loadChatPrompt } from '../src/inference/chat-template.js';

const REPEATS = Number(process.env.BENCH_VARIANT_REPEATS ?? 3);
const TOKENS = 128;
const PROMPT = [5, 17, 300, 2, 44, 9, 120, 7];
const REPO = join(import.meta.dirname, '..');
const now = (): number => performance.now();
const round = (x: number, d = 2): number => Number(x.toFixed(d));
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

interface Variant {
  dir: string;
  file: string;
  dtype: 'fp32' | 'q4';
  /** Why transformers.js cannot run this file, when it cannot. */
  peerSkip?: string;
}

/** edgectl: tokens/s of the real generate loop, and the tokens (greedy, EOS ignored). */
async function edgectlRun(v: Variant): Promise<{ tokS: number; tokens: number[] }> {
  const lm = await LmSession.load(v.dir, { modelFile: v.file });
  try {
    const rates: number[] = [];
    let tokens: number[] = [];
    for (let r = 0; r < REPEATS; r++) {
      const t0 = now();
      const out = await collect(generate(lm, PROMPT, { maxTokens: TOKENS, eosTokenIds: [] }));
      rates.push((out.tokens.length * 1000) / (now() - t0));
      tokens = out.tokens;
    }
    return { tokS: median(rates), tokens };
  } finally {
    await lm.release();
  }
}

/** transformers.js: the same file through AutoModelForCausalLM.generate, greedy, 128 new tokens. */
async function peerRun(v: Variant): Promise<{ tokS: number; tokens: number[] }> {
  const tjs = await import('@huggingface/transformers');
  tjs.env.allowRemoteModels = false;
  tjs.env.localModelPath = dirname(v.dir);
  const slash = v.file.lastIndexOf('/');
  const model = await tjs.AutoModelForCausalLM.from_pretrained(v.dir.slice(dirname(v.dir).length + 1), {
    local_files_only: true,
    device: 'cpu',
    dtype: 'fp32',
    subfolder: slash < 0 ? '' : v.file.slice(0, slash),
    model_file_name: v.file.slice(slash + 1).replace(/\.onnx$/, ''),
    session_options: { intraOpNumThreads: 1, interOpNumThreads: 1 },
  });
  try {
    const input = new tjs.Tensor('int64', BigInt64Array.from(PROMPT.map(BigInt)), [1, PROMPT.length]);
    const mask = new tjs.Tensor('int64', new BigInt64Array(PROMPT.length).fill(1n), [1, PROMPT.length]);
    const rates: number[] = [];
    let tokens: number[] = [];
    for (let r = 0; r < REPEATS; r++) {
      const t0 = now();
      const out = (await model.generate({
        inputs: input,
        attention_mask: mask,
        max_new_tokens: TOKENS,
        min_new_tokens: TOKENS,
        do_sample: false,
      })) as { tolist(): bigint[][] };
      const ms = now() - t0;
      tokens = (out.tolist()[0] ?? []).slice(PROMPT.length).map(Number);
      rates.push((tokens.length * 1000) / ms);
    }
    return { tokS: median(rates), tokens };
  } finally {
    await model.dispose();
  }
}

async function row(v: Variant): Promise<Record<string, unknown>> {
  const own = await edgectlRun(v);
  const out: Record<string, unknown> = { file: v.file, edgectl_tok_s: round(own.tokS, 1) };
  if (v.peerSkip) return { ...out, transformers_js: { skipped: v.peerSkip } };
  try {
    const peer = await peerRun(v);
    const same = peer.tokens.length === own.tokens.length && peer.tokens.every((t, i) => t === own.tokens[i]);
    if (v.dtype === 'fp32' && !same)
      throw new Error(
        `fp32 tokens differ: ${JSON.stringify({ own: own.tokens.slice(0, 8), peer: peer.tokens.slice(0, 8) })}`,
      );
    return {
      ...out,
      transformers_js_tok_s: round(peer.tokS, 1),
      edgectl_vs_transformers_js: round(own.tokS / peer.tokS),
      tokens_identical: same,
    };
  } catch (err) {
    return { ...out, transformers_js: { error: (err as Error).message.slice(0, 300) } };
  }
}

async function pair(fp32: Variant, q4: Variant): Promise<Record<string, unknown>> {
  const a = await row(fp32);
  const b = await row(q4);
  return { fp32: a, q4: b, q4_vs_fp32: round((b.edgectl_tok_s as number) / (a.edgectl_tok_s as number)) };
}

/** Generates (once, cached) the SmolLM2-135M-shaped export; a string says why it could not. */
function smollm2135m(): string | { dir: string } {
  const dir = join(REPO, 'node_modules', '.cache', 'edgectl-bench', 'smollm2-135m');
  if (existsSync(join(dir, 'onnx', 'model_q4.onnx'))) return { dir };
  const py = '/usr/bin/python3';
  if (!existsSync(py)) return `${py} is not installed (the generator needs Python with numpy and onnx)`;
  try {
    execFileSync(py, ['-c', 'import numpy, onnx'], { stdio: 'pipe' });
  } catch {
    return `${py} lacks numpy or onnx (apt-get install python3-onnx)`;
  }
  mkdirSync(dir, { recursive: true });
  execFileSync(py, ['-m', 'tools.fixtures.q4', '--smollm2-135m', dir], { cwd: REPO, stdio: 'pipe' });
  return { dir };
}

/** Chat template render + encode (µs) against a whole 32-token edge chat request (ms). */
async function chatCost(dir: string): Promise<Record<string, number>> {
  const tok = TextTokenizer.load(dir);
  const chat = loadChatPrompt(dir, tok);
  const turns = [
    { role: 'system', content: 'You are a helpful support agent.' },
    { role: 'user', content: 'Hi, I was charged twice for order 48213. Can you refund one?' },
  ];
  const us: number[] = [];
  for (let i = 0; i < 2000; i++) {
    const t0 = now();
    chat.template.encode(turns);
    us.push((now() - t0) * 1000);
  }
  const lm = await LmSession.load(dir);
  const ms: number[] = [];
  for (let r = 0; r < 5; r++) {
    const t0 = now();
    const { ids } = chat.template.encode(turns);
    await collect(generate(lm, ids, { maxTokens: 32, eosTokenIds: [] }));
    ms.push(now() - t0);
  }
  await lm.release();
  const template = median(us);
  const request = median(ms);
  return {
    template_us: round(template, 1),
    request_ms_32_tokens: round(request, 1),
    template_share: round(template / 1000 / request, 4),
  };
}

export async function variantsBench(root: string): Promise<Record<string, unknown>> {
  const draft = join(root, 'models', 'draft');
  const lora = 'the draft graph takes lora.* inputs, which transformers.js does not feed';
  const family = join(REPO, 'test', 'fixtures', 'families', 'smollm2');
  const big = smollm2135m();
  return {
    tokens: TOKENS,
    repeats: REPEATS,
    fixture_draft: await pair(
      { dir: draft, file: 'model.onnx', dtype: 'fp32', peerSkip: lora },
      { dir: draft, file: 'model_q4.onnx', dtype: 'q4', peerSkip: lora },
    ),
    fixture_smollm2_family: await pair(
      { dir: family, file: 'onnx/model.onnx', dtype: 'fp32' },
      { dir: family, file: 'onnx/model_q4.onnx', dtype: 'q4' },
    ),
    smollm2_135m_shape:
      typeof big === 'string'
        ? { skipped: big }
        : await pair(
            { dir: big.dir, file: 'onnx/model.onnx', dtype: 'fp32' },
            { dir: big.dir, file: 'onnx/model_q4.onnx', dtype: 'q4' },
          ),
    chat_template: { draft_transcript: await chatCost(draft), smollm2_chatml: await chatCost(family) },
  };
}
