/**
 * Rewrites an ONNX model so chosen projections take LoRA matrices as graph inputs, in the
 * convention the runtime feeds (lora-slots.ts): `lora.<layer>.<module>.A` [r, in] and `.B`
 * [out, r], float32, with a dynamic rank `lora_rank`. Each target `y = MatMul(x, W)` becomes
 * `y = MatMul(x, W) + MatMul(MatMul(x, Aᵀ), Bᵀ)`: the projection node keeps its bytes except its
 * output name, the branch nodes follow it (so the node list stays topologically sorted), and the
 * new inputs are appended at the end of the graph. PEFT's scaling is already folded into B by the
 * loader, and all-zero A/B (no adapter) add exactly +0, so the base output is unchanged.
 *
 * Every other byte of the model (initializers above all) is copied verbatim from the original, so
 * content-defined chunks of the weights are shared with it; external data files are untouched.
 */
import {
  ATTRIBUTE,
  DTYPE,
  GRAPH,
  MODEL,
  NODE,
  type WireGraph,
  type WireModel,
  type WireNode,
} from './onnx-wire.js';
import { concat, lenField, readFields, varintField, type WireField } from './protobuf-wire.js';
import type { Projection } from './targets.js';

const RANK_DIM = 'lora_rank';
/** AttributeProto.AttributeType values. */
const ATTR_INT = 2;
const ATTR_INTS = 7;

function copy(buf: Uint8Array, f: WireField): Uint8Array {
  return buf.subarray(f.start, f.end);
}

/** The message's fields re-emitted in order, each replaced by `fn`'s bytes when it returns some. */
function rebuild(
  buf: Uint8Array,
  fields: readonly WireField[],
  fn: (f: WireField) => Uint8Array | undefined,
): Uint8Array {
  return concat(fields.map((f) => fn(f) ?? copy(buf, f)));
}

function attrInt(name: string, value: number): Uint8Array {
  return lenField(
    NODE.attribute,
    concat([
      lenField(ATTRIBUTE.name, name),
      varintField(ATTRIBUTE.i, value),
      varintField(ATTRIBUTE.type, ATTR_INT),
    ]),
  );
}

function attrInts(name: string, values: number[]): Uint8Array {
  const ints = values.map((v) => varintField(ATTRIBUTE.ints, v));
  return lenField(
    NODE.attribute,
    concat([lenField(ATTRIBUTE.name, name), ...ints, varintField(ATTRIBUTE.type, ATTR_INTS)]),
  );
}

function node(
  op: string,
  name: string,
  inputs: string[],
  output: string,
  attrs: Uint8Array[] = [],
): Uint8Array {
  return lenField(
    GRAPH.node,
    concat([
      ...inputs.map((i) => lenField(NODE.input, i)),
      lenField(NODE.output, output),
      lenField(NODE.name, name),
      lenField(NODE.opType, op),
      ...attrs,
    ]),
  );
}

function dim(value: number | string): Uint8Array {
  // TensorShapeProto.Dimension: dim_value = 1, dim_param = 2.
  return lenField(1, typeof value === 'number' ? varintField(1, value) : lenField(2, value));
}

/** A float32 graph input (ValueInfoProto) of shape `dims`. */
export function floatInput(name: string, dims: (number | string)[]): Uint8Array {
  const shape = lenField(2, concat(dims.map(dim)));
  const tensorType = lenField(1, concat([varintField(1, DTYPE.float), shape]));
  return lenField(GRAPH.input, concat([lenField(1, name), lenField(2, tensorType)]));
}

export function loraInputs(p: Projection): Uint8Array[] {
  const prefix = `lora.${p.layer}.${p.module}`;
  return [
    floatInput(`${prefix}.A`, [RANK_DIM, p.inFeatures]),
    floatInput(`${prefix}.B`, [p.outFeatures, RANK_DIM]),
  ];
}

/** The projection with its output renamed, then the LoRA branch adding into the original output. */
function branch(buf: Uint8Array, p: Projection, serial: number): Uint8Array {
  const y = p.node.outputs[0] as string;
  const x = p.node.inputs[0] as string;
  const base = `${y}/lora_base`;
  const tag = `/lora/${serial}/layers.${p.layer}/${p.module}`;
  let first = true;
  const projection = lenField(
    GRAPH.node,
    rebuild(buf, p.node.fields, (f) => {
      if (f.field !== NODE.output || !first) return undefined;
      first = false;
      return lenField(NODE.output, base);
    }),
  );
  const parts = [projection];
  let [a, b] = [`${tag}/A_T`, `${tag}/B_T`];
  parts.push(node('Transpose', a, [`lora.${p.layer}.${p.module}.A`], a, [attrInts('perm', [1, 0])]));
  parts.push(node('Transpose', b, [`lora.${p.layer}.${p.module}.B`], b, [attrInts('perm', [1, 0])]));
  if (p.float16) {
    parts.push(node('Cast', `${a}_f16`, [a], `${a}_f16`, [attrInt('to', DTYPE.float16)]));
    parts.push(node('Cast', `${b}_f16`, [b], `${b}_f16`, [attrInt('to', DTYPE.float16)]));
    [a, b] = [`${a}_f16`, `${b}_f16`];
  }
  parts.push(node('MatMul', `${tag}/low`, [x, a], `${tag}/low`));
  parts.push(node('MatMul', `${tag}/delta`, [`${tag}/low`, b], `${tag}/delta`));
  parts.push(node('Add', `${tag}/add`, [base, `${tag}/delta`], y));
  return concat(parts);
}

interface Ctx {
  buf: Uint8Array;
  targets: Map<WireNode, Projection>;
  serial: number;
}

/** A node whose subgraph attributes are rewritten (bytes unchanged when nothing inside is a target). */
function nodeWithSubgraphs(ctx: Ctx, n: WireNode): Uint8Array {
  let next = 0;
  const body = rebuild(ctx.buf, n.fields, (f) => {
    if (f.field !== NODE.attribute) return undefined;
    const attr = readFields(ctx.buf, f.valueStart, f.end);
    if (!attr.some((x) => x.field === ATTRIBUTE.g || x.field === ATTRIBUTE.graphs)) return undefined;
    const inner = rebuild(ctx.buf, attr, (x) => {
      if (x.field !== ATTRIBUTE.g && x.field !== ATTRIBUTE.graphs) return undefined;
      const sub = n.subgraphs[next++] as WireGraph;
      return lenField(x.field, graphBody(ctx, sub, []));
    });
    return lenField(NODE.attribute, inner);
  });
  return lenField(GRAPH.node, body);
}

function graphBody(ctx: Ctx, graph: WireGraph, extra: Uint8Array[]): Uint8Array {
  let i = 0;
  const body = rebuild(ctx.buf, graph.fields, (f) => {
    if (f.field !== GRAPH.node) return undefined;
    const n = graph.nodes[i++] as WireNode;
    const target = ctx.targets.get(n);
    if (target) return branch(ctx.buf, target, ctx.serial++);
    return n.subgraphs.length > 0 ? nodeWithSubgraphs(ctx, n) : undefined;
  });
  return concat([body, ...extra]);
}

/** The model's bytes with `projections` taking LoRA inputs (one A/B pair per layer and module). */
export function addLoraInputs(model: WireModel, projections: readonly Projection[]): Uint8Array {
  const ctx: Ctx = { buf: model.buf, targets: new Map(projections.map((p) => [p.node, p])), serial: 0 };
  const seen = new Set<string>();
  const inputs: Uint8Array[] = [];
  for (const p of projections) {
    const key = `${p.layer}.${p.module}`;
    if (seen.has(key)) continue;
    seen.add(key);
    inputs.push(...loraInputs(p));
  }
  const graph = graphBody(ctx, model.graph, inputs);
  return rebuild(model.buf, model.fields, (f) =>
    f.field === MODEL.graph ? lenField(MODEL.graph, graph) : undefined,
  );
}
