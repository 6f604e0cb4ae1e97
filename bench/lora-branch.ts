/**
 * What a `model prepare` LoRA branch costs per decode token (`npx vite-node bench/lora-branch.ts`,
 * about 30 s): one projection `y = x·W` as a one-node ONNX graph, against the same graph after the
 * rewrite (src/inference/lora-graph/rewrite.ts) fed a zero rank-1 adapter (no adapter) and a rank-16
 * one, for one token (x [1, 1, in]) on one CPU thread at graph optimisation level `all`, as sites
 * run. Sizes: SmolLM2-135M's q_proj (576x576) and v_proj (576x192), and a 2048x2048 projection.
 * Each figure is the median of 3000 runs, interleaved so machine load hits all three alike; a
 * run includes ONNX Runtime's per-run overhead (~20 µs), which the prepared graph shares.
 */
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { readModel } from '../src/inference/lora-graph/onnx-wire.js';
import { concat, lenField, varintField } from '../src/inference/lora-graph/protobuf-wire.js';
import { addLoraInputs } from '../src/inference/lora-graph/rewrite.js';
import { findProjections } from '../src/inference/lora-graph/targets.js';

const WEIGHT = 'model.layers.0.self_attn.q_proj.weight';

function valueInfo(field: number, name: string, dims: (number | string)[]): Uint8Array {
  const dim = (d: number | string) => lenField(1, typeof d === 'number' ? varintField(1, d) : lenField(2, d));
  const shape = lenField(2, concat(dims.map(dim)));
  return lenField(
    field,
    concat([lenField(1, name), lenField(2, lenField(1, concat([varintField(1, 1), shape])))]),
  );
}

/** ModelProto bytes of `y = MatMul(x, W)`, W [fanIn, fanOut] float32. */
function projection(fanIn: number, fanOut: number): Uint8Array {
  const w = new Float32Array(fanIn * fanOut).map((_, i) => Math.sin(i) * 0.05);
  const dims = concat([varintField(1, fanIn), varintField(1, fanOut), varintField(2, 1)]);
  const init = lenField(5, concat([dims, lenField(8, WEIGHT), lenField(9, new Uint8Array(w.buffer))]));
  const node = lenField(
    1,
    concat([lenField(1, 'x'), lenField(1, WEIGHT), lenField(2, 'y'), lenField(4, 'MatMul')]),
  );
  const io = [valueInfo(11, 'x', [1, 'S', fanIn]), valueInfo(12, 'y', [1, 'S', fanOut])];
  const graph = concat([node, lenField(2, 'g'), init, ...io]);
  const opset = lenField(8, concat([lenField(1, ''), varintField(2, 17)]));
  return concat([varintField(1, 8), opset, lenField(7, graph)]);
}

const OPTIONS: InferenceSession.SessionOptions = {
  executionProviders: ['cpu'],
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  executionMode: 'sequential',
  graphOptimizationLevel: 'all',
};

async function measure(fanIn: number, fanOut: number): Promise<Record<string, number | string>> {
  const bytes = projection(fanIn, fanOut);
  const model = readModel(bytes);
  const base = await InferenceSession.create(bytes, OPTIONS);
  const prepared = await InferenceSession.create(addLoraInputs(model, findProjections(model.graph)), OPTIONS);
  const x = new Tensor('float32', new Float32Array(fanIn).fill(0.1), [1, 1, fanIn]);
  const lora = (r: number) => ({
    x,
    'lora.0.q_proj.A': new Tensor('float32', new Float32Array(r * fanIn).fill(0.01), [r, fanIn]),
    'lora.0.q_proj.B': new Tensor('float32', new Float32Array(fanOut * r).fill(0.01), [fanOut, r]),
  });
  const runs: [InferenceSession, Record<string, Tensor>][] = [
    [base, { x }],
    [prepared, lora(1)],
    [prepared, lora(16)],
  ];
  const times: number[][] = runs.map(() => []);
  for (let i = 0; i < 3000; i++) {
    for (const [k, [session, feeds]] of runs.entries()) {
      const t0 = performance.now();
      await session.run(feeds);
      times[k]?.push(performance.now() - t0);
    }
  }
  const [plain, zero, rank16] = times.map((t) => {
    t.sort((a, b) => a - b);
    return Math.round((t[t.length >> 1] ?? 0) * 10_000) / 10;
  });
  return { shape: `${fanIn}x${fanOut}`, matmulUs: plain ?? 0, noAdapterUs: zero ?? 0, rank16Us: rank16 ?? 0 };
}

const results = [];
for (const [fanIn, fanOut] of [
  [576, 576],
  [576, 192],
  [2048, 2048],
] as const)
  results.push(await measure(fanIn, fanOut));
console.log(JSON.stringify({ bench: 'lora-branch', results }, null, 2));
