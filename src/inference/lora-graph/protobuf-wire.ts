/**
 * The protobuf wire format, just enough to edit an ONNX model without decoding its weights: a
 * reader that walks a message's fields as byte ranges, and writers for the few fields we add.
 *
 * Why not a protobuf library (`protobufjs` with onnx.proto): a decode/encode round trip would build
 * a JS object per initializer and re-serialise every weight, costing memory the size of the model
 * and risking a byte-level difference (field order, packed encodings) that would defeat the
 * content-defined dedupe of the rewritten file against the original. Editing at the wire level
 * copies every untouched field's bytes verbatim, so the weights of a prepared model are the same
 * bytes at (nearly) the same offsets. Only wire types 0 (varint), 1 (64-bit), 2 (length-delimited)
 * and 5 (32-bit) occur in ONNX; groups (3, 4) are refused.
 */

/** One field of a message: its number, wire type and where its bytes are in the buffer. */
export interface WireField {
  field: number;
  wire: number;
  /** Start of the tag (the field's first byte). */
  start: number;
  /** Start of the value (after the length prefix for wire type 2). */
  valueStart: number;
  /** End of the field (exclusive). */
  end: number;
  /** The varint value (wire type 0) or the payload length (wire type 2). */
  value: number;
}

export class WireError extends Error {}

function readVarint(buf: Uint8Array, pos: number): [number, number] {
  let result = 0;
  let scale = 1;
  for (let i = 0; i < 10; i++) {
    const b = buf[pos + i];
    if (b === undefined) throw new WireError(`truncated varint at byte ${pos}`);
    result += (b & 0x7f) * scale;
    scale *= 128;
    if ((b & 0x80) === 0) return [result, pos + i + 1];
  }
  throw new WireError(`varint longer than 10 bytes at byte ${pos}`);
}

/** The fields of the message in `buf[start, end)`, in file order. */
export function readFields(buf: Uint8Array, start = 0, end = buf.length): WireField[] {
  const out: WireField[] = [];
  let pos = start;
  while (pos < end) {
    const [tag, afterTag] = readVarint(buf, pos);
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    let valueStart = afterTag;
    let fieldEnd: number;
    let value = 0;
    if (wire === 0) [value, fieldEnd] = readVarint(buf, afterTag);
    else if (wire === 1) fieldEnd = afterTag + 8;
    else if (wire === 5) fieldEnd = afterTag + 4;
    else if (wire === 2) {
      [value, valueStart] = readVarint(buf, afterTag);
      fieldEnd = valueStart + value;
    } else throw new WireError(`unsupported wire type ${wire} (field ${field}) at byte ${pos}`);
    if (fieldEnd > end) throw new WireError(`field ${field} at byte ${pos} runs past its message`);
    out.push({ field, wire, start: pos, valueStart, end: fieldEnd, value });
    pos = fieldEnd;
  }
  return out;
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();

export function fieldString(buf: Uint8Array, f: WireField): string {
  return decoder.decode(buf.subarray(f.valueStart, f.end));
}

/** Repeated int64 values of a field (packed or one per field), e.g. TensorProto.dims. */
export function fieldInts(buf: Uint8Array, fields: readonly WireField[], field: number): number[] {
  const out: number[] = [];
  for (const f of fields) {
    if (f.field !== field) continue;
    if (f.wire === 0) out.push(f.value);
    else if (f.wire === 2) {
      for (let pos = f.valueStart; pos < f.end;) {
        const [v, next] = readVarint(buf, pos);
        out.push(v);
        pos = next;
      }
    }
  }
  return out;
}

function varint(n: number): number[] {
  const out: number[] = [];
  let v = n;
  while (v >= 128) {
    out.push((v % 128) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return out;
}

/** Concatenates byte arrays. */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let pos = 0;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

/** A length-delimited field (a string, bytes or an embedded message). */
export function lenField(field: number, payload: Uint8Array | string): Uint8Array {
  const bytes = typeof payload === 'string' ? encoder.encode(payload) : payload;
  return concat([Uint8Array.from([...varint(field * 8 + 2), ...varint(bytes.length)]), bytes]);
}

/** A varint field (int32, int64 >= 0, enum). */
export function varintField(field: number, value: number): Uint8Array {
  return Uint8Array.from([...varint(field * 8), ...varint(value)]);
}
