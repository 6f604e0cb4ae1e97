/**
 * Where output goes: results on stdout, progress and logs on stderr (docs/architecture.md "Conventions").
 *
 * `Io` (the I/O host of src/foundation/io-host.ts) is passed into services so they can report logs
 * and progress without knowing about terminals; the base command builds one from the process
 * (`stderrIo` in src/cli/terminal-host.ts), tests build one that records lines.
 */
import { recordingHost, type IoHost } from './io-host.js';

export { jsonLogLine, type LogFormat, type LogLevel } from './io-host.js';

/** The I/O host services receive (src/foundation/io-host.ts); `Io` is its name in the CLI layer. */
export type Io = IoHost;

export function isCI(env: NodeJS.ProcessEnv = process.env): boolean {
  const ci = env.CI;
  return ci !== undefined && ci !== '' && ci !== '0' && ci.toLowerCase() !== 'false';
}

export function isInteractive(
  stream: { isTTY?: boolean } = process.stderr,
  env: NodeJS.ProcessEnv = process.env,
): boolean {
  return Boolean(stream.isTTY) && !isCI(env) && env.TERM !== 'dumb';
}

/** A host that records what it was told; for tests and for embedding services. */
export const memoryIo = recordingHost;

/** Human-readable byte counts for progress lines. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}
