/**
 * The one I/O host (docs/architecture.md, "Output"): the single interface through which services
 * report logs, steps and progress, shaped after the AWS CDK toolkit's IoHost (the host is injected;
 * the service only says what happened). A service calls `log` for a diagnostic and `step` for a long
 * piece of work whose status it updates; it never picks a renderer or looks at the terminal. Each
 * host decides: the CLI (src/cli/terminal-host.ts) renders steps with listr2 at a TTY and as plain
 * throttled lines in CI, pipes and `--json`; the daemons (src/runtime/daemon/log.ts) write structured
 * log lines; tests use `recordingHost()` below and assert on what was reported.
 */

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export const LOG_LEVEL_ORDER: Readonly<Record<LogLevel, number>> = {
  debug: 10,
  info: 20,
  warn: 30,
  error: 40,
};

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

/** Updates the status line of the running step (hosts throttle or drop it as they see fit). */
export type Report = (status: string) => void;

export interface IoHost {
  /**
   * True when the host is a person's interactive terminal (a TTY, not CI, not --json). Only the CLI
   * layer reads it, to choose a live view (ink) for `--watch`; services must not branch on it.
   */
  readonly interactive: boolean;
  /** A diagnostic or progress message, with optional structured fields (kept by structured hosts). */
  log(level: LogLevel, message: string, fields?: Record<string, unknown>): void;
  /** Runs one named step of long work; `report` updates its status. Resolves to `fn`'s result. */
  step<T>(title: string, fn: (report: Report) => Promise<T>): Promise<T>;
}

/** What a service needs to run steps; every IoHost is one. */
export type StepRunner = Pick<IoHost, 'step'>;

/**
 * Steps as plain log lines: the title when a step starts, its status at most every `intervalMs`.
 * The renderer of every non-interactive host (CI, pipes, --json, daemons).
 */
export function plainSteps(log: IoHost['log'], intervalMs = 2000): IoHost['step'] {
  return async (title, fn) => {
    log('info', `${title}...`);
    let last = 0;
    return fn((status) => {
      const now = Date.now();
      if (now - last < intervalMs) return;
      last = now;
      log('info', `  ${status}`);
    });
  };
}

/** A host that reports nothing (library use, benchmarks). */
export const silentHost: IoHost = {
  interactive: false,
  log: () => undefined,
  step: (_title, fn) => fn(() => undefined),
};

export interface RecordedEvent {
  kind: 'log' | 'step' | 'status';
  level: LogLevel;
  message: string;
  fields?: Record<string, unknown>;
}

/**
 * A host that records what services reported, for tests and for embedding services: `lines` holds
 * `level: message` for each log line (the form tests have always asserted on), `events` every log,
 * step start and status update in order.
 */
export function recordingHost(): IoHost & { lines: string[]; events: RecordedEvent[] } {
  const lines: string[] = [];
  const events: RecordedEvent[] = [];
  return {
    interactive: false,
    lines,
    events,
    log(level, message, fields) {
      lines.push(`${level}: ${message}`);
      events.push({ kind: 'log', level, message, ...(fields ? { fields } : {}) });
    },
    async step(title, fn) {
      events.push({ kind: 'step', level: 'info', message: title });
      return fn((status) => events.push({ kind: 'status', level: 'info', message: status }));
    },
  };
}
