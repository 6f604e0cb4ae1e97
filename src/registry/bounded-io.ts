/**
 * Bounded reading of registry bytes, for both Store backends (limits.ts): a file read whole after
 * its fstat size was checked, cut off if it grew past the cap meanwhile; an HTTP response body
 * counted as it streams and dropped at the cap, so a server that sends more than it declared
 * cannot fill memory; and the object size a ranged response's Content-Range reports.
 */
import type { FileHandle } from 'node:fs/promises';
import { objectTooLarge } from './limits.js';

/** Largest single read(2) issued: positional reads take an int32 length. */
const MAX_READ = 0x4000_0000;

/** Fills `buf` from `pos` on; returns the bytes read (fewer at end of file). */
export async function fill(fh: FileHandle, buf: Uint8Array, pos: number): Promise<number> {
  let off = 0;
  while (off < buf.length) {
    const { bytesRead } = await fh.read(buf, off, Math.min(buf.length - off, MAX_READ), pos + off);
    if (bytesRead === 0) break;
    off += bytesRead;
  }
  return off;
}

/**
 * The whole file, refused past `max` bytes before anything is allocated for it (the size from
 * fstat) and again while reading (a file that grew since the fstat is cut off at `max` + 1).
 */
export async function readBounded(fh: FileHandle, size: number, max: number, key: string): Promise<Buffer> {
  if (size > max) throw objectTooLarge(key, size, max);
  const parts: Buffer[] = [];
  let total = 0;
  // One byte more than fstat said, so a file that grew is noticed; then on in 1 MiB steps.
  let step = size + 1;
  for (;;) {
    const remaining = max + 1 - total;
    if (remaining <= 0) throw objectTooLarge(key, undefined, max);
    const buf = Buffer.allocUnsafe(Math.min(step, remaining));
    const n = await fill(fh, buf, total);
    parts.push(buf.subarray(0, n));
    total += n;
    if (n < buf.length) break;
    step = 1024 * 1024;
  }
  if (total > max) throw objectTooLarge(key, undefined, max);
  return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, total);
}

/** A response body as the SDK hands it over (a Node Readable with the SDK's mixins). */
type SdkBody = AsyncIterable<Uint8Array> & { destroy?: () => void };

/**
 * Reads a response body, at most `max` bytes: the bytes are counted as they arrive and the stream
 * is destroyed at `max` + 1, so a server sending more than it declared cannot fill memory.
 */
export async function readCapped(body: unknown, max: number, over: () => Error): Promise<Buffer> {
  if (body === undefined || body === null) return Buffer.alloc(0);
  const parts: Buffer[] = [];
  let total = 0;
  // Leaving the loop early (the throw) makes for-await call return(), which destroys the stream.
  for await (const chunk of body as SdkBody) {
    total += chunk.length;
    if (total > max) throw over();
    parts.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length));
  }
  return Buffer.concat(parts, total);
}

/** Drops a body that will not be read, so its socket is released. */
export function discard(body: unknown): void {
  (body as SdkBody | undefined)?.destroy?.();
}

/** The object's full size from a ranged response's `Content-Range: bytes a-b/size`. */
export function totalSize(contentRange: string | undefined): number | undefined {
  const m = /\/([0-9]+)\s*$/.exec(contentRange ?? '');
  return m?.[1] === undefined ? undefined : Number(m[1]);
}
