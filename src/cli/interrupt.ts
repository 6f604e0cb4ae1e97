/**
 * Ctrl-C for long-running commands (DESIGN: exit 130 on interrupt). `onInterrupt` turns SIGINT (and
 * SIGTERM, which stops a loop without counting as an interrupt) into an AbortSignal; an ink live
 * view, which reads Ctrl-C as a key in raw mode rather than a signal, reports it with
 * `markInterrupted`. Commands end with `exitIfInterrupted()` so every interrupted command exits
 * 130, whatever path it stopped by.
 */
import { ExitCode } from './errors.js';

let wasInterrupted = false;

export function markInterrupted(): void {
  wasInterrupted = true;
}

export function interrupted(): boolean {
  return wasInterrupted;
}

/** Sets exit code 130 when the user interrupted; returns whether they did. */
export function exitIfInterrupted(): boolean {
  if (wasInterrupted) process.exitCode = ExitCode.Interrupted;
  return wasInterrupted;
}

export interface InterruptHandle {
  signal: AbortSignal;
  dispose(): void;
}

export function onInterrupt(): InterruptHandle {
  const controller = new AbortController();
  const onInt = () => {
    markInterrupted();
    controller.abort();
  };
  const onTerm = () => controller.abort();
  process.once('SIGINT', onInt);
  process.once('SIGTERM', onTerm);
  return {
    signal: controller.signal,
    dispose() {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
    },
  };
}
