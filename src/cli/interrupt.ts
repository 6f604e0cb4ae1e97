/**
 * Ctrl-C for long-running commands (docs/architecture.md "Conventions": exit 130 on interrupt). `onInterrupt` turns SIGINT (and
 * SIGTERM, which stops a loop without counting as an interrupt) into an AbortSignal; an ink live
 * view, which reads Ctrl-C as a key in raw mode rather than a signal, reports it with
 * `markInterrupted`. The base command (src/cli/base-command.ts) owns the handle (`this.signal`) and
 * exits 130 after an interrupted run, whatever path it stopped by.
 */
import { ExitCode } from '../foundation/errors.js';

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
  // `on`, not `once`: a second Ctrl-C while the command cleans up (stopping what it started) must
  // not kill it half way; the listeners go when the command ends.
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  return {
    signal: controller.signal,
    dispose() {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
    },
  };
}
