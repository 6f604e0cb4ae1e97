import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Flags } from '@oclif/core';
import { BaseCommand } from '../../src/cli/base-command.js';
import { NotFoundError, UserError } from '../../src/foundation/errors.js';
import { durationFlag, registryFlag, siteDataDirFlag, siteNameArg, trustFlag } from '../../src/cli/flags.js';
import { readSiteFile } from '../../src/fleet/site-files.js';
import { VERIFIER_TOKEN_ENV } from '../../src/verifier/protocol.js';
import { SITE_TOKEN_ENV, startSiteDaemon, type SiteUpResult } from '../../src/runtime/daemon/client.js';
import { parseListen } from '../../src/runtime/daemon/listen.js';
import { daemonLog } from '../../src/runtime/daemon/log.js';
import { siteDataPaths } from '../../src/site/data-dir.js';
import { resolveSiteDataDir } from '../../src/site/service.js';

export default class SiteUp extends BaseCommand<typeof SiteUp> {
  static override summary = "Start a site's runtime daemon: sync loop plus an OpenAI-compatible API.";
  static override description =
    'One process keeps the site synced (conditional GET of the fleet head every --sync-interval), serves the ' +
    'current generation (draft model, LoRA adapters, policy) on an OpenAI-compatible API (/v1/chat/completions, ' +
    '/v1/completions, /v1/models, /v1/status, /healthz, /readyz, /metrics), switches to a new generation without ' +
    'dropping requests, and uploads signed feedback every --feedback-window. By default it starts in the ' +
    'background, waits until /readyz answers and prints its pid and address; pid, state and log files are in ' +
    '<data-dir>/run/. A daemon already running is reported, not started twice. With --foreground it serves in ' +
    'this process until SIGTERM or Ctrl-C (systemd, containers); SIGTERM drains in-flight streams. The listen ' +
    "address and the verifier URL default to the site's declaration (runtime.listen, runtime.verifier); a " +
    `non-loopback address needs a bearer token (--token or ${SITE_TOKEN_ENV}).`;
  static override examples = [
    '<%= config.bin %> site up store-001',
    '<%= config.bin %> site up store-001 --listen 127.0.0.1:0 --json',
    `${SITE_TOKEN_ENV}=s3cret <%= config.bin %> site up store-001 --listen 0.0.0.0:8081 --foreground`,
  ];
  static override args = { name: siteNameArg };
  static override flags = {
    'data-dir': siteDataDirFlag,
    registry: registryFlag,
    trust: trustFlag,
    listen: Flags.string({
      summary: 'Address to serve on, host:port (port 0 = any free port).',
      description: "Default: runtime.listen of the site's declaration, else 127.0.0.1:8080.",
      helpValue: '<host:port>',
    }),
    token: Flags.string({
      summary: 'Bearer token clients must send (required for a non-loopback --listen).',
      env: SITE_TOKEN_ENV,
      helpValue: '<token>',
    }),
    foreground: Flags.boolean({
      summary: 'Serve in this process until SIGTERM/SIGINT instead of detaching.',
    }),
    'sync-interval': durationFlag({
      summary: "Time between syncs (default: runtime.interval of the site's declaration, else 30s).",
    }),
    'feedback-window': durationFlag({
      summary: 'Length of a feedback window (one signed report per window and context).',
      default: '60s',
    }),
    'verifier-url': Flags.string({
      summary: "Verifier base URL (default: runtime.verifier of the site's declaration).",
      env: 'EDGECTL_SITE_VERIFIER_URL',
      helpValue: '<url>',
    }),
    'verifier-token': Flags.string({
      summary: 'Bearer token the verifier requires (its `verifier up --token`).',
      env: VERIFIER_TOKEN_ENV,
      helpValue: '<token>',
    }),
    'request-timeout': durationFlag({
      summary: 'Longest a client may take to send a request (headers and body) before 408.',
      default: '30s',
    }),
    threads: Flags.integer({
      summary: 'ONNX Runtime threads of the draft model session.',
      default: 1,
      min: 1,
    }),
    'max-concurrent': Flags.integer({ summary: 'Generations running at once.', default: 4, min: 1 }),
    queue: Flags.integer({ summary: 'Requests that may wait before a 429.', default: 64, min: 0 }),
    'shadow-sample': Flags.string({
      summary: 'Share of requests re-run with a rollout shadow adapter after the response (0..1).',
      description:
        'Only requests whose adapter has a shadow adapter of the same name (a rollout shadow step) are eligible; ' +
        'at most one shadow run at a time, never delaying a response.',
      default: '0.2',
      helpValue: '<share>',
    }),
    drain: durationFlag({
      summary: 'How long SIGTERM waits for in-flight streams before closing them.',
      default: '10s',
    }),
    timeout: durationFlag({
      summary: 'How long to wait for the detached daemon to become ready.',
      default: '60s',
    }),
  };

  public async run(): Promise<SiteUpResult> {
    const f = this.flags;
    const site = this.args.name;
    const cfg = this.projectConfig(f.registry);
    const dataDir = resolveSiteDataDir(cfg.root, site, f['data-dir']);
    const paths = siteDataPaths(dataDir);
    if (!existsSync(paths.siteKey)) {
      throw new NotFoundError(`site ${site} has no key at ${paths.siteKey}`, {
        code: 'E_NO_SITE_KEY',
        suggestion: `Declare the site with \`${this.config.bin} site add ${site}\`, or pass --data-dir.`,
      });
    }
    if (f.listen) parseListen(f.listen); // fail here, not in the child
    const syncIntervalMs = f['sync-interval'];
    const feedbackWindowMs = f['feedback-window'];
    const drainMs = f.drain;
    const requestTimeoutMs = f['request-timeout'];
    const shadowSample = Number(f['shadow-sample']);
    if (!(f['shadow-sample'].trim() !== '' && shadowSample >= 0 && shadowSample <= 1)) {
      throw new UserError(`--shadow-sample: "${f['shadow-sample']}" is not a share between 0 and 1`, {
        code: 'E_USAGE',
        suggestion: 'e.g. --shadow-sample 0.2 (a fifth of eligible requests), 0 disables shadow runs',
      });
    }
    const trustPath = existsSync(cfg.trustPath) ? cfg.trustPath : undefined;

    if (f.foreground) {
      // Loaded only here: the runtime pulls in ONNX Runtime, which the detached parent never needs.
      const { runSiteForeground } = await import('../../src/runtime/daemon/lifecycle.js');
      return runSiteForeground(
        {
          site,
          dataDir,
          registryUrl: cfg.registry,
          projectTrustPath: trustPath,
          listen: f.listen,
          defaultListen: declaredListen(join(cfg.sitesDir, `${site}.yaml`)),
          bearerToken: f.token,
          syncIntervalMs,
          feedbackWindowMs,
          verifierUrl: f['verifier-url'],
          verifierToken: f['verifier-token'],
          requestTimeoutMs,
          threads: f.threads,
          maxConcurrent: f['max-concurrent'],
          maxQueue: f.queue,
          shadowSample,
          drainMs,
          log: daemonLog(f['log-level'], undefined, f['log-format']),
        },
        this.io,
        (d) => this.io.log('info', `site ${site} ready at ${d.url} (pid ${process.pid})`),
      );
    }

    const args = [
      'site',
      'up',
      site,
      '--foreground',
      '--data-dir',
      dataDir,
      '--registry',
      cfg.registry,
      '--feedback-window',
      `${f['feedback-window']}ms`,
      '--threads',
      String(f.threads),
      '--max-concurrent',
      String(f['max-concurrent']),
      '--queue',
      String(f.queue),
      '--shadow-sample',
      String(shadowSample),
      '--drain',
      `${f.drain}ms`,
      '--log-level',
      f['log-level'],
      '--request-timeout',
      `${f['request-timeout']}ms`,
      ...(trustPath ? ['--trust', trustPath] : []),
      ...(f.listen ? ['--listen', f.listen] : []),
      ...(f['sync-interval'] ? ['--sync-interval', `${f['sync-interval']}ms`] : []),
      ...(f['verifier-url'] ? ['--verifier-url', f['verifier-url']] : []),
    ];
    const r = await startSiteDaemon(
      {
        site,
        dataDir,
        entry: join(this.config.root, 'bin', 'run.js'),
        args,
        cwd: cfg.root,
        bearerToken: f.token,
        verifierToken: f['verifier-token'],
        readyTimeoutMs: f.timeout,
      },
      this.io,
    );
    const gen = typeof r.info?.generation === 'string' ? r.info.generation : undefined;
    if (r.status === 'already-running') {
      this.out(`Site ${site} is already running (pid ${r.pid}${r.url ? `, ${r.url}` : ', starting'}).`);
    } else {
      this.out(`Site ${site} started (pid ${r.pid}) at ${r.url} in ${r.startupMs} ms.`);
      if (gen) this.out(`  generation: ${gen}`);
      this.out(`  log:        ${r.logFile}`);
      this.out(`  status:     ${this.config.bin} site status ${site} --watch`);
      this.out(`  stop:       ${this.config.bin} site down ${site}`);
    }
    return r;
  }
}

/** runtime.listen of the project's sites/<name>.yaml, if the file exists and says so. */
function declaredListen(file: string): string | undefined {
  if (!existsSync(file)) return undefined;
  try {
    return readSiteFile(resolve(file), file).value.runtime.listen;
  } catch {
    return undefined;
  }
}
