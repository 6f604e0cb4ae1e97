import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../../src/foundation/errors.js';
import { ForwardBatcher } from '../../src/inference/forward-batcher.js';
import { loadLoraAdapter } from '../../src/inference/lora.js';
import { LmSession } from '../../src/inference/model-session.js';
import { readSafetensors, type F32Tensor } from '../../src/inference/safetensors.js';
import { TextTokenizer } from '../../src/inference/tokenizer.js';
import {
  BAD_ADAPTER_DIR,
  copyToTemp,
  DRAFT_DIR,
  maxAbsDiff,
  removeTempDirs,
  safetensorsBytes,
  SUPPORT_ADAPTER_DIR,
  VERIFIER_DIR,
  type TensorSpec,
} from './helpers.js';

const GOLDEN = join(import.meta.dirname, '..', 'fixtures', 'models.golden.json');
const PREFIX = 'base_model.model.model.layers';

type Tensors = Map<string, F32Tensor>;

function readAdapter(dir: string): Tensors {
  const file = join(dir, 'adapter_model.safetensors');
  return readSafetensors(readFileSync(file), file);
}

/** Writes an adapter dir: the support adapter's config (patched) and the given tensors. */
function writeAdapter(tensors: Tensors, configPatch: Record<string, unknown> = {}): string {
  const dir = copyToTemp(SUPPORT_ADAPTER_DIR, 'edgectl-lora-');
  const config = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8')) as Record<
    string,
    unknown
  >;
  writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify({ ...config, ...configPatch }, null, 2));
  const specs: Record<string, TensorSpec> = {};
  for (const [name, t] of tensors) specs[name] = { dtype: 'F32', shape: t.shape, values: t.data };
  writeFileSync(join(dir, 'adapter_model.safetensors'), safetensorsBytes(specs));
  return dir;
}

function mapTensors(
  src: Tensors,
  fn: (name: string, t: F32Tensor) => [string, F32Tensor] | undefined,
): Tensors {
  const out: Tensors = new Map();
  for (const [name, t] of src) {
    const r = fn(name, t);
    if (r) out.set(r[0], r[1]);
  }
  return out;
}

function expectAdapterError(fn: () => unknown, pattern: RegExp): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(UserError);
  expect((err as UserError).exitCode).toBe(2);
  expect((err as UserError).message).toMatch(pattern);
  expect((err as UserError).suggestion).toBeTruthy();
}

describe('LoRA adapters on the draft model', () => {
  let draft: LmSession;
  let ids: number[];
  let base: Float32Array;
  let support: Tensors;

  beforeAll(async () => {
    draft = await LmSession.load(DRAFT_DIR);
    ids = TextTokenizer.load(DRAFT_DIR).encode('Customer: my order never arrived, can you check it?\nAgent:');
    base = (await draft.forward(ids)).logits.last().slice();
    support = readAdapter(SUPPORT_ADAPTER_DIR);
  });
  afterAll(async () => {
    removeTempDirs();
    await draft.release();
  });

  const lastLogits = async (dir: string): Promise<Float32Array> => {
    const adapter = loadLoraAdapter(dir, draft.inputs.lora);
    return (await draft.forward(ids, undefined, adapter.feeds)).logits.last().slice();
  };

  it('a zero adapter gives the base logits', async () => {
    const zero = writeAdapter(
      mapTensors(support, (n, t) => [
        n,
        n.includes('lora_B') ? { shape: t.shape, data: new Float32Array(t.data.length) } : t,
      ]),
    );
    expect(maxAbsDiff(await lastLogits(zero), base)).toBeLessThanOrEqual(1e-6);
  });

  it('the support adapter changes the logits; adapters switch per call without reloading', async () => {
    const adapter = loadLoraAdapter(SUPPORT_ADAPTER_DIR, draft.inputs.lora);
    expect(adapter).toMatchObject({ name: 'support', rank: 8, baseModel: 'model/draft@1.0.0' });
    expect(adapter.targets).toHaveLength(14);
    const bad = loadLoraAdapter(BAD_ADAPTER_DIR, draft.inputs.lora);
    const withSupport = (await draft.forward(ids, undefined, adapter.feeds)).logits.last().slice();
    expect(maxAbsDiff(withSupport, base)).toBeGreaterThan(1e-2);
    // Interleave: base, support-bad, support, base on the same session.
    const again = [undefined, bad.feeds, adapter.feeds, undefined];
    const rows = [];
    for (const feeds of again) rows.push((await draft.forward(ids, undefined, feeds)).logits.last().slice());
    expect(maxAbsDiff(rows[0] as Float32Array, base)).toBeLessThanOrEqual(1e-6);
    expect(maxAbsDiff(rows[1] as Float32Array, withSupport)).toBeGreaterThan(1e-3);
    expect(maxAbsDiff(rows[2] as Float32Array, withSupport)).toBeLessThanOrEqual(1e-6);
    expect(maxAbsDiff(rows[3] as Float32Array, base)).toBeLessThanOrEqual(1e-6);
  });

  it('a ForwardBatcher batches concurrent passes per adapter and returns the one-by-one results', async () => {
    const adapter = loadLoraAdapter(SUPPORT_ADAPTER_DIR, draft.inputs.lora);
    const batcher = new ForwardBatcher(draft);
    const jobs = [5, 9, 14, 7, 11, 3].map((n, i) => ({
      ids: ids.slice(0, n),
      feeds: i % 2 ? adapter.feeds : undefined,
    }));
    const batched = await Promise.all(jobs.map((j) => batcher.forward(j.ids, undefined, j.feeds)));
    expect(batcher.stats).toEqual({ passes: 2, sequences: 6 });
    for (const [i, j] of jobs.entries()) {
      const single = await draft.forward(j.ids, undefined, j.feeds);
      expect(maxAbsDiff(batched[i]?.logits.data ?? [], single.logits.data)).toBeLessThanOrEqual(1e-4);
    }
  });

  it.runIf(existsSync(GOLDEN))(
    'matches the PyTorch reference logits (lora_alpha / r folded into B)',
    async () => {
      const golden = JSON.parse(readFileSync(GOLDEN, 'utf8')) as {
        cases: { ids: number[]; draft_last_logits_head: Record<string, number[]> }[];
      };
      const feeds = {
        base: undefined,
        support: loadLoraAdapter(SUPPORT_ADAPTER_DIR, draft.inputs.lora).feeds,
        'support-bad': loadLoraAdapter(BAD_ADAPTER_DIR, draft.inputs.lora).feeds,
      };
      for (const c of golden.cases) {
        for (const [name, f] of Object.entries(feeds)) {
          const row = (await draft.forward(c.ids, undefined, f)).logits.last();
          const want = c.draft_last_logits_head[name] as number[];
          expect(maxAbsDiff(row.subarray(0, want.length), want)).toBeLessThanOrEqual(1e-3);
        }
      }
    },
  );

  it('modules of different rank are zero-padded to a common rank without changing the result', async () => {
    // q_proj at rank 4 (rank_pattern), everything else at rank 8 ...
    const mixed = mapTensors(support, (n, t) => {
      if (!n.includes('q_proj')) return [n, t];
      if (n.includes('lora_A'))
        return [n, { shape: [4, t.shape[1] as number], data: t.data.slice(0, 4 * (t.shape[1] as number)) }];
      const out = t.shape[0] as number;
      const data = new Float32Array(out * 4);
      for (let o = 0; o < out; o++) for (let j = 0; j < 4; j++) data[o * 4 + j] = t.data[o * 8 + j] as number;
      return [n, { shape: [out, 4], data }];
    });
    // ... equals rank 8 everywhere with q_proj's extra rank rows/columns zeroed.
    const padded = mapTensors(support, (n, t) => {
      if (!n.includes('q_proj')) return [n, t];
      const data = t.data.slice();
      if (n.includes('lora_A')) data.fill(0, 4 * (t.shape[1] as number));
      else for (let o = 0; o < (t.shape[0] as number); o++) data.fill(0, o * 8 + 4, o * 8 + 8);
      return [n, { shape: t.shape, data }];
    });
    // PEFT scales each module by its own alpha / r: alpha_pattern keeps q_proj at 8 / 4 = 16 / 8.
    const a = await lastLogits(
      writeAdapter(mixed, { rank_pattern: { q_proj: 4 }, alpha_pattern: { q_proj: 8 } }),
    );
    const b = await lastLogits(writeAdapter(padded));
    expect(maxAbsDiff(a, b)).toBeLessThanOrEqual(1e-5);
    expect(maxAbsDiff(a, base)).toBeGreaterThan(1e-3);
  });

  describe('refuses adapters that do not fit the model, naming file, tensor and fix', () => {
    it('rank above the model max_rank', () => {
      const big = mapTensors(support, (n, t) => {
        const [d0, d1] = t.shape as [number, number];
        const shape = n.includes('lora_A') ? [32, d1] : [d0, 32];
        return [n, { shape, data: new Float32Array(shape[0]! * shape[1]!) }];
      });
      const dir = writeAdapter(big, { r: 32 });
      expectAdapterError(
        () => loadLoraAdapter(dir, draft.inputs.lora),
        /adapter_config\.json:\d+: r: rank 32 .*exceeds the model's max_rank 16/,
      );
    });

    it('a module the model has no LoRA input for', () => {
      const dir = writeAdapter(
        mapTensors(support, (n, t) => [n.replace('self_attn.q_proj', 'self_attn.qkv_proj'), t]),
      );
      expectAdapterError(
        () => loadLoraAdapter(dir, draft.inputs.lora),
        /adapter_model\.safetensors: tensor .*qkv_proj.*targets qkv_proj in layer 0/,
      );
    });

    it('a layer the model does not have', () => {
      const dir = writeAdapter(mapTensors(support, (n, t) => [n.replace(`${PREFIX}.1.`, `${PREFIX}.7.`), t]));
      expectAdapterError(() => loadLoraAdapter(dir, draft.inputs.lora), /in layer 7/);
    });

    it('matrices shaped for another base model', () => {
      const dir = writeAdapter(
        mapTensors(support, (n, t) =>
          n.endsWith('0.self_attn.v_proj.lora_A.weight')
            ? [n, { shape: [8, 64], data: new Float32Array(8 * 64) }]
            : [n, t],
        ),
      );
      expectAdapterError(
        () => loadLoraAdapter(dir, draft.inputs.lora),
        /v_proj: lora_A is \[8,64\].*needs A \[r, 128\]/,
      );
    });

    it('an A without its B, and r disagreeing with the weights', () => {
      const noB = writeAdapter(
        mapTensors(support, (n, t) => (n.endsWith('0.mlp.up_proj.lora_B.weight') ? undefined : [n, t])),
      );
      expectAdapterError(() => loadLoraAdapter(noB, draft.inputs.lora), /up_proj has lora_A but no lora_B/);
      const wrongR = writeAdapter(support, { r: 4 });
      expectAdapterError(() => loadLoraAdapter(wrongR, draft.inputs.lora), /r: 4 does not match the rank 8/);
    });

    it('DoRA, and adapters for a model without LoRA inputs', async () => {
      const dora = writeAdapter(support, { use_dora: true });
      expectAdapterError(
        () => loadLoraAdapter(dora, draft.inputs.lora),
        /adapter_config\.json:\d+: use_dora: DoRA adapters are not supported/,
      );
      const verifier = await LmSession.load(VERIFIER_DIR);
      expectAdapterError(
        () => loadLoraAdapter(SUPPORT_ADAPTER_DIR, verifier.inputs.lora),
        /takes no LoRA inputs/,
      );
      await verifier.release();
    });

    it('a missing weights file', () => {
      const dir = copyToTemp(SUPPORT_ADAPTER_DIR, 'edgectl-lora-');
      writeFileSync(join(dir, 'adapter_model.safetensors'), new Uint8Array(3));
      expectAdapterError(() => loadLoraAdapter(dir, draft.inputs.lora), /not a valid safetensors file/);
    });
  });
});
