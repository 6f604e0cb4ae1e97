/**
 * SHA-256 on a worker thread for verifying a stream of registry reads. Verify hashes every byte
 * twice (its chunk, its file), so on a machine with two cores the work is split: the main thread
 * reads ranges and hashes a share of the chunks, then hands the range's memory to the worker
 * (transferred, not copied), which hashes the remaining chunks and feeds the running file hashes.
 * Messages are handled in order, so file hashes see their bytes in order across ranges.
 *
 * The worker is plain JavaScript evaluated from a string so it runs the same from the compiled CLI
 * and from TypeScript sources under vitest (no separate worker file to locate).
 */
import { createHash } from 'node:crypto';
import { Worker } from 'node:worker_threads';

const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const files = new Map();
parentPort.on('message', ({ id, buffer, chunks, segments, close }) => {
  const bytes = new Uint8Array(buffer);
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
   * Queues a job over `bytes`. The caller must not touch `bytes` afterwards: when the Buffer owns
   * its whole ArrayBuffer, that memory moves to the worker.
   */
  submit(bytes: Buffer, job: StreamJob): Promise<StreamResult> {
    if (this.failure) return Promise.reject(this.failure);
    const owns =
      bytes.byteOffset === 0 &&
      bytes.byteLength === bytes.buffer.byteLength &&
      bytes.buffer instanceof ArrayBuffer;
    const buffer: ArrayBuffer = owns ? (bytes.buffer as ArrayBuffer) : new Uint8Array(bytes).buffer;
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage(
        {
          id,
          buffer,
          chunks: job.chunks.flat(),
          segments: job.segments.flat(),
          close: job.close,
        },
        [buffer],
      );
    });
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}

/** Digest of a range, on the calling thread. */
export function sha256Range(bytes: Uint8Array, offset: number, length: number): string {
  return `sha256:${createHash('sha256')
    .update(bytes.subarray(offset, offset + length))
    .digest('hex')}`;
}
