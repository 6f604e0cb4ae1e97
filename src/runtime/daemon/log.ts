/**
 * The site daemon's log lines: one line per event on stderr (the detached daemon's stderr is its
 * log file, `site logs` reads it; under systemd it is the journal), with a timestamp, the level and
 * `key=value` fields, so a log tail shown by a failed `site up` reads without a JSON viewer. With
 * `--log-format json` each line is a JSON object instead (`time`, `level`, `msg`, the fields), for
 * log collectors. A DaemonLog is also the daemon's I/O host (src/foundation/io-host.ts): services
 * handed it (the sync agent) report their steps as plain log lines with the same fields.
 */
import {
  jsonLogLine,
  LOG_LEVEL_ORDER,
  plainSteps,
  type IoHost,
  type LogFormat,
  type LogLevel,
} from '../../foundation/io-host.js';

/** Callable as `log(level, msg, fields)` (the daemon's own lines) and usable as an IoHost. */
export type DaemonLog = ((level: LogLevel, msg: string, fields?: Record<string, unknown>) => void) & IoHost;

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
  const log = (level: LogLevel, msg: string, fields?: Record<string, unknown>): void => {
    if (LOG_LEVEL_ORDER[level] < LOG_LEVEL_ORDER[minLevel]) return;
    write(`${format === 'json' ? jsonLogLine(level, msg, fields) : formatLogLine(level, msg, fields)}\n`);
  };
  return Object.assign(log, { interactive: false, log, step: plainSteps(log) });
}

/** The daemon log as the host the sync agent reports through (it is one already). */
export function logIo(log: DaemonLog): IoHost {
  return log;
}
