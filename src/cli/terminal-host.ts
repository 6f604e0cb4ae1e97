/**
 * The CLI's I/O host (src/foundation/io-host.ts): every line on stderr, stdout being the result's
 * (docs/architecture.md "Conventions"). At an interactive terminal a step is a listr2 task with a spinner and
 * a live status line; in CI, in a pipe and with `--json` it is plain throttled lines
 * (`plainSteps`), and `--log-format json` makes each line a JSON object for log collectors. The base
 * command builds one per run; services receive it and never know which renderer is behind it.
 */
import {
  jsonLogLine,
  LOG_LEVEL_ORDER,
  plainSteps,
  type IoHost,
  type LogFormat,
  type LogLevel,
  type Report,
} from '../foundation/io-host.js';
import { isInteractive } from '../foundation/output.js';

/** One listr2 task per step, rendered on stderr; listr2 is loaded only when a step runs. */
async function listrStep<T>(title: string, fn: (report: Report) => Promise<T>): Promise<T> {
  const { Listr, ListrLogger, ProcessOutput } = await import('listr2');
  let result: T | undefined;
  const list = new Listr(
    [
      {
        title,
        task: async (_ctx, task) => {
          result = await fn((status) => {
            task.output = status;
          });
        },
      },
    ],
    {
      exitOnError: true,
      registerSignalListeners: false,
      // Progress belongs on stderr: stdout carries the result.
      rendererOptions: {
        logger: new ListrLogger({ processOutput: new ProcessOutput(process.stderr, process.stderr) }),
      },
    },
  );
  await list.run();
  return result as T;
}

/**
 * The host of a command run: lines below `level` dropped; `interactive` (a TTY, not CI, not
 * --json) selects listr2 for steps, which a JSON log format never uses.
 */
export function terminalHost(level: LogLevel, interactive: boolean, format: LogFormat = 'text'): IoHost {
  const live = interactive && format === 'text';
  const log: IoHost['log'] = (l, message) => {
    if (LOG_LEVEL_ORDER[l] < LOG_LEVEL_ORDER[level]) return;
    if (format === 'json') {
      process.stderr.write(`${jsonLogLine(l, message)}\n`);
      return;
    }
    const prefix = l === 'info' ? '' : `${l}: `;
    process.stderr.write(`${prefix}${message}\n`);
  };
  return { interactive: live, log, step: live ? listrStep : plainSteps(log) };
}

/** The CLI's host on stderr, interactive at a terminal outside CI. */
export function stderrIo(
  level: LogLevel = 'info',
  interactive = isInteractive(),
  format: LogFormat = 'text',
): IoHost {
  return terminalHost(level, interactive, format);
}
