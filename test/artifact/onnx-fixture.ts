/**
 * Builds tiny, real ONNX decoder models for tests: a ModelProto encoded by hand (protobuf wire
 * format) whose graph has exactly the Optimum decoder I/O names (`input_ids`, `attention_mask`,
 * `past_key_values.<i>.key|value` -> `logits`, `present.<i>.key|value`, optional LoRA inputs), wired
 * with Identity nodes. ONNX Runtime loads it like any exported model, so the model validator is
 * tested against a real session without a Python toolchain. Knobs break the contract on purpose.
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

function identity(input: string, output: string): Buffer {
  return message([
    [1, input],
    [2, output],
    [3, `id_${output}`],
    [4, 'Identity'],
  ]);
}

export interface TinyOnnxOptions {
  layers: number;
  /** LoRA inputs `lora.<layer>.<module>.A|B` for these modules. */
  loraModules?: string[];
  /** Leave this output out. */
  dropOutput?: string;
  /** An extra input the runtime does not feed. */
  extraInput?: string;
}

export function tinyOnnx(opts: TinyOnnxOptions): Buffer {
  const inputs: Buffer[] = [
    valueInfo('input_ids', INT64, ['batch', 'seq']),
    valueInfo('attention_mask', INT64, ['batch', 'total']),
  ];
  const outputs: Buffer[] = [];
  const nodes: Buffer[] = [];
  for (let i = 0; i < opts.layers; i++) {
    for (const kv of ['key', 'value']) {
      inputs.push(valueInfo(`past_key_values.${i}.${kv}`, FLOAT, ['batch', 2, 'past', 4]));
      const out = `present.${i}.${kv}`;
      if (out !== opts.dropOutput) {
        outputs.push(valueInfo(out, FLOAT, ['batch', 2, 'past', 4]));
        nodes.push(identity(`past_key_values.${i}.${kv}`, out));
      }
    }
  }
  if (opts.dropOutput !== 'logits') {
    outputs.push(valueInfo('logits', FLOAT, ['batch', 2, 'past', 4]));
    nodes.push(identity('past_key_values.0.value', 'logits'));
  }
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
