/**
 * `--watch` off a live view: poll a service every interval until the value is final or the run is
 * interrupted, writing each refresh (or only the ones that changed) as a block of plain lines. Kept
 * in the CLI layer so a command's `--watch` is one call, like its one-shot form.
 */
import { setTimeout as sleep } from 'node:timers/promises';

export interface PollOptions<T> {
  poll: () => Promise<T>;
  /** The text written for one value (with --json: one JSON line per value). */
  render: (value: T) => string;
  /** True once the value is final (the watch then ends); default never. */
  done?: (value: T) => boolean;
  intervalMs: number;
  signal: AbortSignal;
  write: (text: string) => void;
  /** Write a value only when its text differs from the last one written. */
  onlyChanges?: boolean;
}

/** Polls until `done` or the signal; resolves to the last value (undefined if interrupted before one). */
export async function pollUntil<T>(o: PollOptions<T>): Promise<T | undefined> {
  let last: T | undefined;
  let lastText: string | undefined;
  while (!o.signal.aborted) {
    last = await o.poll();
    const text = o.render(last);
    if (!o.onlyChanges || text !== lastText) o.write(text);
    lastText = text;
    if (o.done?.(last) || o.signal.aborted) break;
    await sleep(o.intervalMs, undefined, { signal: o.signal }).catch(() => undefined);
  }
  return last;
}
