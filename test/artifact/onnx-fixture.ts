/**
 * Builds tiny, real ONNX decoder models for tests: a ModelProto encoded by hand (protobuf wire
 * format) whose graph has exactly the Optimum decoder I/O names (`input_ids`, `attention_mask`,
 * `past_key_values.<i>.key|value` -> `logits`, `present.<i>.key|value`, optional LoRA inputs) and
 * a few real ops (Cast, Unsqueeze, Expand, Concat) so it runs like an exported decoder. ONNX Runtime
 * loads and runs it like any exported model, so the model validator is tested against a real
 * session without a Python toolchain. Knobs break the contract on purpose.
 */

function varint(n: number): number[] {
  const out: number[] = [];
  let v = n;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return out;
}

type Field = [field: number, value: number | string | Buffer];

function message(fields: Field[]): Buffer {
  const parts: number[][] = [];
  for (const [field, value] of fields) {
    if (typeof value === 'number') parts.push([...varint((field << 3) | 0), ...varint(value)]);
    else {
      const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
      parts.push([...varint((field << 3) | 2), ...varint(bytes.length), ...bytes]);
    }
  }
  return Buffer.from(parts.flat());
}

const FLOAT = 1;
const INT64 = 7;

function valueInfo(name: string, elemType: number, dims: (number | string)[]): Buffer {
  const shape = message(dims.map((d) => [1, message([typeof d === 'number' ? [1, d] : [2, d]])]));
  const tensorType = message([
    [1, elemType],
    [2, shape],
  ]);
  return message([
    [1, name],
    [2, message([[1, tensorType]])],
  ]);
}

function node(op: string, inputs: string[], output: string, attrs: Buffer[] = []): Buffer {
  return message([
    ...inputs.map((i): Field => [1, i]),
    [2, output],
    [3, `n_${output}`],
    [4, op],
    ...attrs.map((a): Field => [5, a]),
  ]);
}

/** An INT attribute (AttributeProto type 2). */
function intAttr(name: string, value: number): Buffer {
  return message([
    [1, name],
    [3, value],
    [20, 2],
  ]);
}

function int64Bytes(values: number[]): Buffer {
  const raw = Buffer.alloc(values.length * 8);
  values.forEach((v, i) => raw.writeBigInt64LE(BigInt(v), i * 8));
  return raw;
}

/** An int64 initializer (TensorProto, raw little-endian data). */
function int64Init(name: string, values: number[]): Buffer {
  return message([
    [1, values.length],
    [2, INT64],
    [8, name],
    [9, int64Bytes(values)],
  ]);
}

/** A float32 initializer of `count` ones, inline. */
function onesInit(name: string, count: number): Buffer {
  const raw = Buffer.from(new Float32Array(count).fill(1).buffer);
  return message([
    [1, count],
    [2, FLOAT],
    [8, name],
    [9, raw],
  ]);
}

/** A float32 initializer of `count` ones stored in an external-data file (`location`, offset 0). */
function externalInit(name: string, count: number, location: string): Buffer {
  const entry = (k: string, v: string): Field => [
    13,
    message([
      [1, k],
      [2, v],
    ]),
  ];
  return message([
    [1, count],
    [2, FLOAT],
    [8, name],
    entry('location', location),
    entry('offset', '0'),
    entry('length', String(count * 4)),
    [14, 1],
  ]);
}

/**
 * The decoder body, small but runnable like a real export: each layer's `present` is its past
 * concatenated with the new tokens' ids broadcast to [batch, 2, seq, 4], and `logits` are the ids
 * broadcast to [batch, seq, 8] (vocab_size 8). So the runtime's forward passes (empty cache, then
 * one token on a cache) work and validation can run them.
 */
function body(opts: TinyOnnxOptions): { nodes: Buffer[]; inits: Buffer[] } {
  const nodes: Buffer[] = [
    node('Cast', ['input_ids'], 'ids_f', [intAttr('to', FLOAT)]),
    node('Unsqueeze', ['ids_f', 'axes_kv'], 'ids_kv'),
    node('Expand', ['ids_kv', 'shape_kv'], 'new_kv'),
    node('Unsqueeze', ['ids_f', 'axes_logits'], 'ids_logits'),
  ];
  if (opts.dropOutput !== 'logits') {
    nodes.push(node('Expand', ['ids_logits', 'shape_logits'], 'wide_logits'));
    nodes.push(node('Mul', ['wide_logits', 'logit_scale'], 'logits'));
  }
  for (let i = 0; i < opts.layers; i++) {
    for (const kv of ['key', 'value']) {
      const out = `present.${i}.${kv}`;
      if (out !== opts.dropOutput)
        nodes.push(node('Concat', [`past_key_values.${i}.${kv}`, 'new_kv'], out, [intAttr('axis', 2)]));
    }
  }
  const inits = [
    int64Init('axes_kv', [1, 3]),
    int64Init('shape_kv', [1, 2, 1, 4]),
    int64Init('axes_logits', [2]),
    int64Init('shape_logits', [1, 1, 8]),
    opts.externalData === undefined
      ? onesInit('logit_scale', 8)
      : externalInit('logit_scale', 8, opts.externalData),
  ];
  return { nodes, inits };
}

export interface TinyOnnxOptions {
  layers: number;
  /** LoRA inputs `lora.<layer>.<module>.A|B` for these modules. */
  loraModules?: string[];
  /** Leave this output out. */
  dropOutput?: string;
  /** An extra input the runtime does not feed. */
  extraInput?: string;
  /** Store one initializer in this external-data file (see `tinyOnnxExternalData`). */
  externalData?: string;
}

/** The bytes of the external-data file a graph built with `externalData` reads. */
export function tinyOnnxExternalData(): Buffer {
  return Buffer.from(new Float32Array(8).fill(1).buffer);
}

export function tinyOnnx(opts: TinyOnnxOptions): Buffer {
  const inputs: Buffer[] = [
    valueInfo('input_ids', INT64, ['batch', 'seq']),
    valueInfo('attention_mask', INT64, ['batch', 'total']),
  ];
  const outputs: Buffer[] = [];
  const { nodes, inits } = body(opts);
  for (let i = 0; i < opts.layers; i++) {
    for (const kv of ['key', 'value']) {
      inputs.push(valueInfo(`past_key_values.${i}.${kv}`, FLOAT, ['batch', 2, 'past', 4]));
      const out = `present.${i}.${kv}`;
      if (out !== opts.dropOutput) outputs.push(valueInfo(out, FLOAT, ['batch', 2, 'total', 4]));
    }
  }
  if (opts.dropOutput !== 'logits') outputs.push(valueInfo('logits', FLOAT, ['batch', 'seq', 8]));
  for (let i = 0; i < opts.layers; i++) {
    for (const m of opts.loraModules ?? []) {
      inputs.push(valueInfo(`lora.${i}.${m}.A`, FLOAT, ['rank', 4]));
      inputs.push(valueInfo(`lora.${i}.${m}.B`, FLOAT, [4, 'rank']));
    }
  }
  if (opts.extraInput) inputs.push(valueInfo(opts.extraInput, FLOAT, [1]));
  const graph = message([
    ...nodes.map((n): Field => [1, n]),
    [2, 'tiny'],
    ...inits.map((t): Field => [5, t]),
    ...inputs.map((v): Field => [11, v]),
    ...outputs.map((v): Field => [12, v]),
  ]);
  return message([
    [1, 8],
    [2, 'edgectl-test'],
    [7, graph],
    [8, message([[2, 17]])],
  ]);
}
