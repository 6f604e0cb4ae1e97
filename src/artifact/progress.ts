/**
 * Progress for long artifact operations (DESIGN: CLI conventions): listr2's spinner renderer on an
 * interactive terminal, plain throttled lines on stderr otherwise (CI, pipes, --json). Services
 * describe their work as steps with a status text; they never know which renderer runs.
 */
import { Listr, ListrLogger, ProcessOutput } from 'listr2';
import type { Io } from '../cli/output.js';

export type Report = (status: string) => void;

export interface Progress {
  /** Runs one step; `report` updates its status line (throttled off a TTY). */
  step<T>(title: string, fn: (report: Report) => Promise<T>): Promise<T>;
}

/** Plain lines: the title when a step starts, status at most every `intervalMs`. */
function plainProgress(io: Io, intervalMs: number): Progress {
  return {
    async step(title, fn) {
      io.log('info', `${title}...`);
      let last = 0;
      return fn((status) => {
        const now = Date.now();
        if (now - last < intervalMs) return;
        last = now;
        io.log('info', `  ${status}`);
      });
    },
  };
}

function listrProgress(): Progress {
  return {
    async step(title, fn) {
      let result: Awaited<ReturnType<typeof fn>> | undefined;
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
      return result as Awaited<ReturnType<typeof fn>>;
    },
  };
}

export function createProgress(io: Io, intervalMs = 2000): Progress {
  return io.interactive ? listrProgress() : plainProgress(io, intervalMs);
}

/** A Progress that prints nothing (library use, benchmarks). */
export const silentProgress: Progress = { step: (_title, fn) => fn(() => undefined) };
