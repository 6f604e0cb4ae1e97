/**
 * The SSE side of a streamed site answer (docs/architecture.md, runtime), opened at the first write:
 * streaming answers start lazily, so a failure before any text can still be an ordinary JSON error.
 * The first event goes out at once (time to first token); later events are coalesced for up to
 * SSE_COALESCE_MS into one socket write, because a write per token costs more than a fixture
 * draft's token (a writev syscall, a chunked-encoding frame and a wake-up of the client per event).
 * Every token is still its own event; only their delivery is batched, and end() writes whatever is
 * pending first.
 */
import type { FastifyReply } from 'fastify';

/**
 * Longest a streamed event waits to share a socket write with the events after it (the first event
 * of a stream never waits). 20 ms is below what a reader of streamed text notices, and at a fixture
 * draft's ~0.4 ms per token it turns ~50 writes into one.
 */
export const SSE_COALESCE_MS = 20;

export class SseStream {
  started = false;
  private pending = '';
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly reply: FastifyReply,
    /** Response headers, read at the first write (the route may change until then). */
    private readonly headers: () => Record<string, string>,
    /** Called with the status once the hijacked response closes (fastify no longer sees it). */
    private readonly onClose: (status: number) => void,
  ) {}

  send(data: unknown): void {
    this.write(JSON.stringify(data));
  }

  /** Writes an already serialized event (the per-token hot path). */
  write(json: string): void {
    const raw = this.reply.raw;
    if (!this.started) {
      this.started = true;
      this.reply.hijack();
      raw.once('close', () => {
        this.cancel();
        this.onClose(raw.statusCode);
      });
      raw.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
        ...this.headers(),
      });
      if (!raw.destroyed) raw.write(`data: ${json}\n\n`);
      return;
    }
    if (raw.destroyed) return;
    this.pending += `data: ${json}\n\n`;
    this.timer ??= setTimeout(this.flush, SSE_COALESCE_MS);
  }

  end(): void {
    const raw = this.reply.raw;
    this.cancel();
    if (!raw.destroyed) raw.end(`${this.pending}data: [DONE]\n\n`);
    this.pending = '';
  }

  private readonly flush = (): void => {
    this.cancel();
    const raw = this.reply.raw;
    if (this.pending !== '' && !raw.destroyed) raw.write(this.pending);
    this.pending = '';
  };

  private cancel(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
