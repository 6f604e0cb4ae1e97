/**
 * `edgectl site up --foreground`: the site daemon in this process under the daemon contract (pid,
 * state and log files in `<data-dir>/run/`, signals, a shutdown deadline that covers the drain and
 * the feedback flush). The detached start, stop, status and logs are in client.ts.
 */
import type { Io } from '../../foundation/output.js';
import { runForeground } from '../../supervisor/foreground.js';
import { runFiles } from '../../supervisor/run-files.js';
import { SITE_DAEMON, siteRunDir, type SiteUpResult } from './client.js';
import { runSiteDaemon, type SiteDaemon, type SiteDaemonOptions } from './daemon.js';

/** Serves until SIGTERM/SIGINT/SIGHUP; `onReady` fires once listening and recorded. */
export async function runSiteForeground(
  opts: SiteDaemonOptions,
  io: Io,
  onReady: (d: SiteDaemon) => void,
): Promise<SiteUpResult> {
  const t0 = performance.now();
  let daemon: SiteDaemon | undefined;
  const runDir = siteRunDir(opts.dataDir);
  const result = await runForeground({
    name: SITE_DAEMON,
    runDir,
    io,
    stopCommand: `edgectl site down ${opts.site}`,
    // Drain, feedback flush and disposal must fit; past this the process exits anyway.
    shutdownTimeoutMs: (opts.drainMs ?? 10_000) + (opts.feedbackUploadTimeoutMs ?? 5_000) + 5_000,
    start: async () => {
      daemon = await runSiteDaemon(opts);
      const d = daemon;
      const s = d.status();
      return {
        url: d.url,
        host: d.host,
        port: d.port,
        info: {
          site: opts.site,
          dataDir: opts.dataDir,
          generation: s.generation?.id ?? null,
          registry: s.registry,
          appliedSeq: s.sync.appliedSeq,
        },
        close: () => d.close(),
      };
    },
    onReady: () => {
      if (daemon) onReady(daemon);
    },
  });
  return {
    status: 'stopped',
    site: opts.site,
    pid: result.pid,
    url: result.url,
    dataDir: opts.dataDir,
    logFile: runFiles(runDir, SITE_DAEMON).logFile,
    startupMs: Math.round(performance.now() - t0),
    info: undefined,
  };
}
