/**
 * Where output goes: results on stdout, progress and logs on stderr (DESIGN: CLI conventions).
 *
 * `Io` is passed into services so they can report progress without knowing about terminals; the
 * base command builds one from the process, tests build one that records lines.
 */

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const order: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Io {
  /** True when stderr is an interactive terminal and we are not in CI: spinners and live views allowed. */
  readonly interactive: boolean;
  /** Progress and diagnostics, always on stderr. */
  log(level: LogLevel, message: string): void;
}

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

/** `text`: `warn: message` lines for people; `json`: one JSON object per line for log collectors. */
export type LogFormat = 'text' | 'json';

/** A JSON log line: `{"time","level","msg",...fields}` (the field names pino and most collectors use). */
export function jsonLogLine(
  level: LogLevel,
  msg: string,
  fields?: Record<string, unknown>,
  now = new Date(),
): string {
  const out: Record<string, unknown> = { time: now.toISOString(), level, msg };
  for (const [k, v] of Object.entries(fields ?? {}))
    if (v !== undefined && !(k in out)) out[k] = v instanceof Error ? v.message : v;
  return JSON.stringify(out);
}

export function stderrIo(
  level: LogLevel = 'info',
  interactive = isInteractive(),
  format: LogFormat = 'text',
): Io {
  return {
    interactive: interactive && format === 'text',
    log(l, message) {
      if (order[l] < order[level]) return;
      if (format === 'json') {
        process.stderr.write(`${jsonLogLine(l, message)}\n`);
        return;
      }
      const prefix = l === 'info' ? '' : `${l}: `;
      process.stderr.write(`${prefix}${message}\n`);
    },
  };
}

/** An Io that keeps lines in memory; for tests and for embedding services. */
export function memoryIo(): Io & { lines: string[] } {
  const lines: string[] = [];
  return { interactive: false, lines, log: (l, m) => lines.push(`${l}: ${m}`) };
}

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
