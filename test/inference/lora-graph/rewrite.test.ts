/**
 * The graph rewrite on hand-built single-projection models, for what the family fixtures do not
 * cover: a projection computing in float16 (float16 weight used directly, as fp16 exports without
 * in-graph casts have) gets its float32 LoRA inputs cast to float16, and the projection is found by
 * its node name (`/model/layers.0/self_attn/q_proj/MatMul`) when the weight has an anonymous name
 * (`onnx::MatMul_123`, as torch.onnx emits). Checked numerically with ONNX Runtime:
 * y = x·W + (x·Aᵀ)·Bᵀ.
 */
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { readModel } from '../../../src/inference/lora-graph/onnx-wire.js';
import { concat, lenField, varintField } from '../../../src/inference/lora-graph/protobuf-wire.js';
import { addLoraInputs } from '../../../src/inference/lora-graph/rewrite.js';
import { findProjections } from '../../../src/inference/lora-graph/targets.js';
import { f16ToF32, f32ToF16 } from '../../../src/inference/model-io.js';

const [IN, OUT, R] = [8, 6, 2];

function valueInfo(field: number, name: string, elem: number, dims: number[]): Uint8Array {
  const shape = lenField(2, concat(dims.map((d) => lenField(1, varintField(1, d)))));
  return lenField(
    field,
    concat([lenField(1, name), lenField(2, lenField(1, concat([varintField(1, elem), shape])))]),
  );
}

/** y = MatMul(x, W) with W [IN, OUT] of element type `elem` (1 float, 10 float16). */
function singleProjection(elem: 1 | 10, w: Float32Array, nodeName: string, weightName: string): Uint8Array {
  const raw = elem === 1 ? new Uint8Array(w.buffer.slice(0)) : new Uint8Array(f32ToF16(w).buffer);
  const init = lenField(
    5,
    concat([
      varintField(1, IN),
      varintField(1, OUT),
      varintField(2, elem),
      lenField(8, weightName),
      lenField(9, raw),
    ]),
  );
  const node = lenField(
    1,
    concat([
      lenField(1, 'x'),
      lenField(1, weightName),
      lenField(2, 'y'),
      lenField(3, nodeName),
      lenField(4, 'MatMul'),
    ]),
  );
  const graph = concat([
    node,
    lenField(2, 'g'),
    init,
    valueInfo(11, 'x', elem, [1, IN]),
    valueInfo(12, 'y', elem, [1, OUT]),
  ]);
  return concat([
    varintField(1, 8),
    lenField(8, concat([lenField(1, ''), varintField(2, 17)])),
    lenField(7, graph),
  ]);
}

const seq = (n: number, k: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * k) * 0.5);

describe('LoRA graph rewrite', () => {
  it.each([
    ['float32, found by weight name', 1, '', 'model.layers.0.self_attn.q_proj.weight'],
    ['float16, found by node name', 10, '/model/layers.0/self_attn/q_proj/MatMul', 'onnx::MatMul_123'],
  ] as const)('%s', async (_what, elem, nodeName, weightName) => {
    const w = seq(IN * OUT, 0.7);
    const model = readModel(singleProjection(elem, w, nodeName, weightName));
    const projections = findProjections(model.graph);
    expect(projections.map((p) => [p.layer, p.module, p.inFeatures, p.outFeatures, p.float16])).toEqual([
      [0, 'q_proj', IN, OUT, elem === 10],
    ]);
    const session = await InferenceSession.create(addLoraInputs(model, projections));
    expect(session.inputNames).toEqual(['x', 'lora.0.q_proj.A', 'lora.0.q_proj.B']);
    const [x, a, b] = [seq(IN, 1.3), seq(R * IN, 0.3), seq(OUT * R, 0.9)];
    const xs = elem === 1 ? new Tensor('float32', x, [1, IN]) : new Tensor('float16', f32ToF16(x), [1, IN]);
    const out = await session.run({
      x: xs,
      'lora.0.q_proj.A': new Tensor('float32', a, [R, IN]),
      'lora.0.q_proj.B': new Tensor('float32', b, [OUT, R]),
    });
    const y = out.y as Tensor;
    expect(y.type).toBe(elem === 1 ? 'float32' : 'float16');
    const got = elem === 1 ? (y.data as Float32Array) : f16ToF32(y.data as Uint16Array);
    const tol = elem === 1 ? 1e-5 : 2e-2;
    for (let o = 0; o < OUT; o++) {
      let want = 0;
      for (let i = 0; i < IN; i++) want += (x[i] as number) * (w[i * OUT + o] as number);
      for (let j = 0; j < R; j++) {
        let low = 0;
        for (let i = 0; i < IN; i++) low += (x[i] as number) * (a[j * IN + i] as number);
        want += low * (b[o * R + j] as number);
      }
      expect(Math.abs((got[o] as number) - want), `y[${o}]`).toBeLessThan(tol);
    }
  });
});
