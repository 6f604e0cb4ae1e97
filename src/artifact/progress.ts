/**
 * Steps of long artifact operations go through the injected I/O host (src/foundation/io-host.ts):
 * a service runs `host.step(title, fn)` and updates its status, and the host decides how it looks
 * (listr2 at a terminal, plain lines in CI and --json, log lines in a daemon). `Progress` is the part
 * of a host a service needs for that, so callers may pass `silentProgress` to run without output.
 */
import { silentHost, type StepRunner } from '../foundation/io-host.js';

export type { Report } from '../foundation/io-host.js';

export type Progress = StepRunner;

/** A Progress that prints nothing (library use, benchmarks). */
export const silentProgress: Progress = silentHost;
