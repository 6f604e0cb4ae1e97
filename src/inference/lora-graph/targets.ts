/**
 * Finds the projections of a standard decoder export that LoRA can target: the `MatMul` (or q4
 * `com.microsoft.MatMulNBits`) of each layer's q_proj, v_proj, ... Hugging Face exports name them
 * in one of two ways, both read here: by node name (`/model/layers.0/self_attn/q_proj/MatMul`,
 * `..._Q4`), as torch.onnx/Optimum and onnxruntime-genai emit, or by weight name
 * (`model.layers.0.self_attn.q_proj.weight`, `...weight_Q4`, `...q_proj.MatMul.weight_Q4`), as
 * exports whose node names are empty do. The projection's sizes come from its weight (MatMul: the
 * [in, out] initializer, through at most one Cast/Identity; MatMulNBits: its K and N attributes);
 * its compute type is float16 when the weight (or the q4 scales) is float16 and used directly.
 * Subgraphs (the If branches of a merged decoder) are searched too; the branches share the
 * graph's LoRA inputs through outer scope.
 */
import { DTYPE, type WireGraph, type WireInitializer, type WireNode } from './onnx-wire.js';

export interface Projection {
  layer: number;
  module: string;
  node: WireNode;
  inFeatures: number;
  outFeatures: number;
  /** The projection computes in float16: the LoRA branch casts to it. */
  float16: boolean;
}

const NODE_NAME = /(?:^|\/)layers\.(\d+)\/(?:[^/]+\/)*?([A-Za-z0-9_]+)\/MatMul[A-Za-z0-9_]*$/;
const WEIGHT_NAME =
  /(?:^|\.)layers\.(\d+)\.(?:[A-Za-z0-9_]+\.)*?([A-Za-z0-9_]+)\.(?:MatMul\.)?weight(?:_[A-Za-z0-9]+)?$/;
const PASS_THROUGH = new Set(['Cast', 'Identity']);

interface Scope {
  initializers: Map<string, WireInitializer>;
  producers: Map<string, WireNode>;
}

function scopeOf(graph: WireGraph, outer: Scope | undefined): Scope {
  const initializers = new Map(outer?.initializers);
  for (const [k, v] of graph.initializers) initializers.set(k, v);
  const producers = new Map(outer?.producers);
  for (const n of graph.nodes) for (const o of n.outputs) producers.set(o, n);
  return { initializers, producers };
}

function layerModule(node: WireNode): [number, string] | undefined {
  const m = NODE_NAME.exec(node.name) ?? WEIGHT_NAME.exec(node.inputs[1] ?? '');
  return m ? [Number(m[1]), m[2] as string] : undefined;
}

function sizes(node: WireNode, scope: Scope): Omit<Projection, 'layer' | 'module' | 'node'> | undefined {
  if (node.opType === 'MatMulNBits') {
    const k = node.ints.get('K');
    const n = node.ints.get('N');
    const scales = scope.initializers.get(node.inputs[2] ?? '');
    if (k === undefined || n === undefined) return undefined;
    return { inFeatures: k, outFeatures: n, float16: scales?.dataType === DTYPE.float16 };
  }
  const w = node.inputs[1] ?? '';
  let init = scope.initializers.get(w);
  const direct = init !== undefined;
  if (!init) {
    const producer = scope.producers.get(w);
    if (producer && PASS_THROUGH.has(producer.opType))
      init = scope.initializers.get(producer.inputs[0] ?? '');
  }
  if (!init || init.dims.length !== 2) return undefined;
  const [inFeatures, outFeatures] = init.dims as [number, number];
  return { inFeatures, outFeatures, float16: direct && init.dataType === DTYPE.float16 };
}

/** Every layer projection of the graph and its subgraphs, in file order. */
export function findProjections(graph: WireGraph, outer?: Scope): Projection[] {
  const scope = scopeOf(graph, outer);
  const out: Projection[] = [];
  for (const node of graph.nodes) {
    for (const sub of node.subgraphs) out.push(...findProjections(sub, scope));
    const isMatMul =
      (node.opType === 'MatMul' && node.domain === '') ||
      (node.opType === 'MatMulNBits' && node.domain === 'com.microsoft');
    if (!isMatMul) continue;
    const lm = layerModule(node);
    const size = lm ? sizes(node, scope) : undefined;
    if (lm && size) out.push({ layer: lm[0], module: lm[1], node, ...size });
  }
  return out;
}
