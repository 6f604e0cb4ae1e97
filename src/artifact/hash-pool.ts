/**
 * SHA-256 on a worker thread for verifying a stream of registry reads. Verify hashes every byte
 * twice (its chunk, its file), so on a machine with two cores the work is split: the main thread
 * reads ranges into a few reused shared buffers and hashes the chunks, while the worker hashes the
 * same bytes, from the same memory, into the running file hashes. Shared buffers mean no copy, no
 * transfer and no fresh allocation per range: a fresh 16 MiB buffer per range costs more in page
 * faults and zeroing than the hash itself (docs/benchmarks.md, "Artifacts"). Jobs are handled in
 * order, so file hashes see their bytes in order across ranges.
 *
 * The worker is plain JavaScript evaluated from a string so it runs the same from the compiled CLI
 * and from TypeScript sources under vitest (no separate worker file to locate).
 */
import * as crypto from 'node:crypto';
import { Worker } from 'node:worker_threads';

const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const files = new Map();
parentPort.on('message', ({ id, buffer, offset, chunks, segments, close }) => {
  const bytes = new Uint8Array(buffer, offset || 0);
  const chunkDigests = [];
  for (let i = 0; i < chunks.length; i += 2) {
    chunkDigests.push('sha256:' + createHash('sha256').update(bytes.subarray(chunks[i], chunks[i] + chunks[i + 1])).digest('hex'));
  }
  for (let i = 0; i < segments.length; i += 3) {
    let h = files.get(segments[i]);
    if (!h) { h = createHash('sha256'); files.set(segments[i], h); }
    h.update(bytes.subarray(segments[i + 1], segments[i + 1] + segments[i + 2]));
  }
  const fileDigests = [];
  for (const f of close) {
    const h = files.get(f) || createHash('sha256');
    files.delete(f);
    fileDigests.push([f, 'sha256:' + h.digest('hex')]);
  }
  parentPort.postMessage({ id, chunkDigests, fileDigests });
});
`;

export type ByteRange = readonly [offset: number, length: number];

export interface StreamJob {
  /** Chunk ranges the worker hashes. */
  chunks: readonly ByteRange[];
  /** Bytes of files, in file order: [file index, offset, length]. */
  segments: readonly (readonly [file: number, offset: number, length: number])[];
  /** Files whose last bytes are in this job: their digests come back. */
  close: readonly number[];
}

export interface StreamResult {
  chunkDigests: string[];
  fileDigests: [file: number, digest: string][];
}

export class StreamHasher {
  private readonly worker: Worker;
  private nextId = 0;
  private readonly pending = new Map<
    number,
    { resolve: (r: StreamResult) => void; reject: (e: unknown) => void }
  >();
  private failure: unknown;

  constructor() {
    this.worker = new Worker(WORKER_SOURCE, { eval: true });
    this.worker.unref();
    this.worker.on('message', (msg: StreamResult & { id: number }) => {
      const p = this.pending.get(msg.id);
      this.pending.delete(msg.id);
      p?.resolve({ chunkDigests: msg.chunkDigests, fileDigests: msg.fileDigests });
    });
    const failAll = (err: unknown) => {
      this.failure = err;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    this.worker.on('error', failAll);
    this.worker.on('exit', (code) => {
      if (this.pending.size > 0) failAll(new Error(`hash worker exited with code ${code}`));
    });
  }

  /** Jobs submitted and not yet answered. */
  get queued(): number {
    return this.pending.size;
  }

  /**
   * Queues a job over `bytes`. A view of a SharedArrayBuffer is shared with the worker (the caller
   * must not overwrite those bytes until the job is answered). Otherwise the caller must not touch
   * `bytes` afterwards: when the Buffer owns its whole ArrayBuffer, that memory moves to the worker.
   */
  submit(bytes: Uint8Array, job: StreamJob): Promise<StreamResult> {
    if (this.failure) return Promise.reject(this.failure);
    const shared = bytes.buffer instanceof SharedArrayBuffer;
    const owns =
      !shared &&
      bytes.byteOffset === 0 &&
      bytes.byteLength === bytes.buffer.byteLength &&
      bytes.buffer instanceof ArrayBuffer;
    const buffer: ArrayBufferLike = shared || owns ? bytes.buffer : new Uint8Array(bytes).buffer;
    const offset = shared ? bytes.byteOffset : 0;
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage(
        {
          id,
          buffer,
          offset,
          chunks: job.chunks.flat(),
          segments: job.segments.flat(),
          close: job.close,
        },
        shared ? [] : [buffer as ArrayBuffer],
      );
    });
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}

/**
 * A few equal buffers in shared memory, handed out and returned: verify reads each range into one
 * and both threads hash it in place. Allocated lazily, so a small artifact touches little memory.
 */
export class SharedSlots {
  private readonly free: Uint8Array[] = [];
  private made = 0;

  constructor(
    readonly slotBytes: number,
    readonly count: number,
  ) {}

  /** A free slot, or undefined when all `count` are in use. */
  take(): Uint8Array | undefined {
    const slot = this.free.pop();
    if (slot) return slot;
    if (this.made >= this.count) return undefined;
    this.made++;
    return new Uint8Array(new SharedArrayBuffer(this.slotBytes));
  }

  give(slot: Uint8Array): void {
    this.free.push(slot);
  }
}

/** One-shot hashing where Node has it (22+): skips the Hash object per chunk. */
const oneShot = (crypto as { hash?: (alg: string, data: Uint8Array, enc: 'hex') => string }).hash;

/** Digest of a range, on the calling thread. */
export function sha256Range(bytes: Uint8Array, offset: number, length: number): string {
  const view = bytes.subarray(offset, offset + length);
  if (oneShot) return `sha256:${oneShot('sha256', view, 'hex')}`;
  return `sha256:${crypto.createHash('sha256').update(view).digest('hex')}`;
}
