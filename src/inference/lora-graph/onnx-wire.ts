/**
 * A read-only index of an ONNX ModelProto at the wire level (protobuf-wire.ts): the main graph's
 * nodes (name, op, domain, inputs, outputs, subgraph attributes) and initializers (name, dims,
 * element type), each with the byte range it came from, so the rewriter can copy everything it
 * does not change verbatim. Field numbers are onnx.proto's (ModelProto.graph = 7, GraphProto.node
 * = 1, .initializer = 5, .input = 11, NodeProto.input = 1, .output = 2, .name = 3, .op_type = 4,
 * .attribute = 5, .domain = 7, AttributeProto.g = 6, .graphs = 11, TensorProto.dims = 1,
 * .data_type = 2, .name = 8). Weights are never decoded.
 */
import { fieldInts, fieldString, readFields, type WireField } from './protobuf-wire.js';

export const MODEL = { graph: 7 } as const;
export const GRAPH = { node: 1, initializer: 5, input: 11 } as const;
export const NODE = { input: 1, output: 2, name: 3, opType: 4, attribute: 5, domain: 7 } as const;
export const ATTRIBUTE = { name: 1, i: 3, g: 6, ints: 8, graphs: 11, type: 20 } as const;
/** TensorProto.DataType values used here. */
export const DTYPE = { float: 1, float16: 10 } as const;

export interface WireNode {
  field: WireField;
  fields: WireField[];
  name: string;
  opType: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  /** Integer attributes (e.g. MatMulNBits K and N). */
  ints: Map<string, number>;
  /** Subgraphs held in attributes (If/Loop/Scan bodies). */
  subgraphs: WireGraph[];
}

export interface WireInitializer {
  name: string;
  dims: number[];
  dataType: number;
  /** Where raw_data (field 9) lies in the model's bytes, when the weight is stored inline. */
  rawData: { start: number; end: number } | undefined;
}

export interface WireGraph {
  /** The GraphProto's own bytes are buf[field.valueStart, field.end). */
  field: WireField;
  fields: WireField[];
  nodes: WireNode[];
  initializers: Map<string, WireInitializer>;
  inputs: string[];
}

export interface WireModel {
  buf: Uint8Array;
  fields: WireField[];
  graph: WireGraph;
}

function readInitializer(buf: Uint8Array, f: WireField): WireInitializer {
  const fields = readFields(buf, f.valueStart, f.end);
  const name = fields.find((x) => x.field === 8);
  const type = fields.find((x) => x.field === 2);
  const raw = fields.find((x) => x.field === 9 && x.wire === 2);
  return {
    name: name ? fieldString(buf, name) : '',
    dims: fieldInts(buf, fields, 1),
    dataType: type?.value ?? 0,
    rawData: raw ? { start: raw.valueStart, end: raw.end } : undefined,
  };
}

function readNode(buf: Uint8Array, f: WireField): WireNode {
  const fields = readFields(buf, f.valueStart, f.end);
  const str = (n: number) => fields.filter((x) => x.field === n).map((x) => fieldString(buf, x));
  const node: WireNode = {
    field: f,
    fields,
    name: str(NODE.name)[0] ?? '',
    opType: str(NODE.opType)[0] ?? '',
    domain: str(NODE.domain)[0] ?? '',
    inputs: str(NODE.input),
    outputs: str(NODE.output),
    ints: new Map(),
    subgraphs: [],
  };
  for (const a of fields.filter((x) => x.field === NODE.attribute)) {
    const attr = readFields(buf, a.valueStart, a.end);
    const nameField = attr.find((x) => x.field === ATTRIBUTE.name);
    const i = attr.find((x) => x.field === ATTRIBUTE.i && x.wire === 0);
    if (nameField && i) node.ints.set(fieldString(buf, nameField), i.value);
    for (const g of attr.filter((x) => x.field === ATTRIBUTE.g || x.field === ATTRIBUTE.graphs))
      node.subgraphs.push(readGraph(buf, g));
  }
  return node;
}

export function readGraph(buf: Uint8Array, f: WireField): WireGraph {
  const fields = readFields(buf, f.valueStart, f.end);
  const graph: WireGraph = { field: f, fields, nodes: [], initializers: new Map(), inputs: [] };
  for (const x of fields) {
    if (x.field === GRAPH.node) graph.nodes.push(readNode(buf, x));
    else if (x.field === GRAPH.initializer) {
      const init = readInitializer(buf, x);
      graph.initializers.set(init.name, init);
    } else if (x.field === GRAPH.input) {
      const name = readFields(buf, x.valueStart, x.end).find((y) => y.field === 1);
      if (name) graph.inputs.push(fieldString(buf, name));
    }
  }
  return graph;
}

/** Indexes a model; throws WireError on bytes that are not a protobuf message. */
export function readModel(buf: Uint8Array): WireModel {
  const fields = readFields(buf);
  const graphs = fields.filter((f) => f.field === MODEL.graph && f.wire === 2);
  if (graphs.length !== 1) throw new Error(`expected one graph in the ModelProto, found ${graphs.length}`);
  return { buf, fields, graph: readGraph(buf, graphs[0] as WireField) };
}
