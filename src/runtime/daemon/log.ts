/**
 * The site daemon's log lines: one line per event on stderr (the detached daemon's stderr is its
 * log file, `site logs` reads it; under systemd it is the journal), with a timestamp, the level and
 * `key=value` fields, so a log tail shown by a failed `site up` reads without a JSON viewer. With
 * `--log-format json` each line is a JSON object instead (`time`, `level`, `msg`, the fields), for
 * log collectors.
 */
import { jsonLogLine, type Io, type LogFormat, type LogLevel } from '../../cli/output.js';

export type DaemonLog = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => void;

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

function formatValue(v: unknown): string {
  if (typeof v === 'string') return /[\s"=]/.test(v) || v === '' ? JSON.stringify(v) : v;
  if (v instanceof Error) return JSON.stringify(v.message);
  return JSON.stringify(v) ?? 'undefined';
}

export function formatLogLine(
  level: LogLevel,
  msg: string,
  fields: Record<string, unknown> | undefined,
  now = new Date(),
): string {
  const parts = [now.toISOString(), level.toUpperCase().padEnd(5), msg];
  for (const [k, v] of Object.entries(fields ?? {}))
    if (v !== undefined) parts.push(`${k}=${formatValue(v)}`);
  return parts.join(' ');
}

export function daemonLog(
  minLevel: LogLevel = 'info',
  write: (line: string) => void = (l) => process.stderr.write(l),
  format: LogFormat = 'text',
): DaemonLog {
  return (level, msg, fields) => {
    if (ORDER[level] < ORDER[minLevel]) return;
    write(`${format === 'json' ? jsonLogLine(level, msg, fields) : formatLogLine(level, msg, fields)}\n`);
  };
}

/** An Io (what the sync agent reports progress through) that writes into the daemon log. */
export function logIo(log: DaemonLog): Io {
  return { interactive: false, log: (level, message) => log(level, message) };
}
