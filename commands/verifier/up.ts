import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { Flags } from '@oclif/core';
import { BaseCommand } from '../../src/cli/base-command.js';
import { durationFlag, registryFlag, trustFlag } from '../../src/cli/flags.js';
import { readSecretKeyFile } from '../../src/registry/keys.js';
import {
  defaultRunDir,
  runVerifierForeground,
  startVerifierDaemon,
  type VerifierUpOptions,
  type VerifierUpResult,
} from '../../src/verifier/server/lifecycle.js';
import { resolveModelSource } from '../../src/verifier/server/model-source.js';
import { VERIFIER_TOKEN_ENV } from '../../src/verifier/protocol.js';

export default class VerifierUp extends BaseCommand<typeof VerifierUp> {
  static override summary = 'Start the cloud verifier service for a model (detached unless --foreground).';
  static override description =
    'Serves the verifier API (sessions, verify, stateless verify, OpenAI-compatible /v1/completions, identity, ' +
    '/healthz, /metrics) for a model directory (model.onnx, config.json, tokenizer.json) or a published model ref. ' +
    'By default it starts a background process, waits until /healthz answers and prints its pid and address; the ' +
    'pid, state and log files live in .edgectl/run/ under the project root. A verifier that is already running is ' +
    'reported, not started twice. With --foreground it serves in this process until SIGTERM or Ctrl-C (systemd, ' +
    'containers). Forward passes beyond --max-concurrency wait in a queue of --queue; past that, requests get 429 ' +
    'with Retry-After. A non-loopback --host needs a bearer token (--token or EDGECTL_VERIFIER_TOKEN) that every ' +
    'client must send (sites read it from EDGECTL_VERIFIER_TOKEN or `site up --verifier-token`).';
  static override examples = [
    '<%= config.bin %> verifier up --model artifacts/models/verifier',
    '<%= config.bin %> verifier up --model artifacts/models/verifier --port 0 --threads 1 --json',
    'EDGECTL_VERIFIER_TOKEN=s3cret <%= config.bin %> verifier up --model artifacts/models/verifier --foreground --host 0.0.0.0',
  ];
  static override flags = {
    registry: registryFlag,
    trust: trustFlag,
    model: Flags.string({
      summary: 'Model directory, or a published ref model/<name>@<version>.',
      required: true,
      helpValue: '<dir|ref>',
    }),
    'model-file': Flags.string({
      summary:
        'Graph file inside the model directory, e.g. onnx/model_q4.onnx (default: artifact.yaml file:/dtype:, else the documented order).',
      helpValue: '<path>',
    }),
    port: Flags.integer({
      summary: 'Port to listen on (0 = any free port).',
      default: 8700,
      min: 0,
      max: 65535,
    }),
    host: Flags.string({
      summary: 'Address to bind (a non-loopback address needs --token).',
      default: '127.0.0.1',
    }),
    token: Flags.string({
      summary: 'Bearer token clients must send (required for a non-loopback --host).',
      env: VERIFIER_TOKEN_ENV,
      helpValue: '<token>',
    }),
    'request-timeout': durationFlag({
      summary: 'Longest a client may take to send a request (headers and body) before 408.',
      default: '30s',
    }),
    foreground: Flags.boolean({
      summary: 'Serve in this process until SIGTERM/SIGINT instead of detaching.',
    }),
    threads: Flags.integer({
      summary: 'CPU threads per forward pass (the cores given to the verifier). Default: all cores.',
      min: 1,
    }),
    batch: Flags.integer({
      summary: 'Sequences per forward pass: passes requested while the model is busy run as one batch.',
      description:
        'Default 1 (no batching). Batching raises throughput under concurrent load; output is unchanged.',
      default: 1,
      min: 1,
      max: 256,
    }),
    'max-concurrency': Flags.integer({
      summary: 'Forward passes admitted at once (default: --threads x --batch).',
      min: 1,
    }),
    queue: Flags.integer({
      summary: 'Requests that may wait for a forward pass before 429.',
      default: 64,
      min: 0,
    }),
    'max-sessions': Flags.integer({ summary: 'Sessions holding a KV cache at once.', default: 256, min: 1 }),
    'session-ttl': durationFlag({
      summary: 'Idle time before a session is released.',
      default: '60s',
      helpValue: false,
    }),
    'identity-key': Flags.string({
      summary: 'Ed25519 secret key file that signs /v1/identity.',
      helpValue: '<path>',
    }),
    timeout: durationFlag({
      summary: 'How long to wait for the detached verifier to become ready.',
      default: '60s',
      helpValue: false,
    }),
    'run-dir': Flags.string({
      summary: 'Directory for pid, state and log files (default: .edgectl/run under the project root).',
      env: 'EDGECTL_RUN_DIR',
      helpValue: '<dir>',
    }),
  };

  public async run(): Promise<VerifierUpResult> {
    const f = this.flags;
    const base = this.projectConfig(f.registry);
    const cfg = f.trust ? { ...base, trustPath: resolve(f.trust) } : base;
    const threads = f.threads ?? availableParallelism();
    const model = await resolveModelSource(f.model, cfg, this.io);
    const opts: VerifierUpOptions = {
      modelDir: model.dir,
      modelFile: f['model-file'],
      host: f.host,
      port: f.port,
      threads,
      maxBatch: f.batch,
      maxConcurrency: f['max-concurrency'],
      queueLimit: f.queue,
      maxSessions: f['max-sessions'],
      sessionTtlMs: f['session-ttl'],
      identityKeyPath: f['identity-key'],
      runDir: resolve(f['run-dir'] ?? defaultRunDir(cfg.root)),
      bearerToken: f.token,
      requestTimeoutMs: f['request-timeout'],
    };
    if (f.foreground) {
      const key = f['identity-key'] ? readSecretKeyFile(resolve(f['identity-key'])) : undefined;
      return runVerifierForeground(opts, key, this.io, (svc) => {
        this.io.log(
          'info',
          `verifier ready at ${svc.url} (pid ${process.pid}, model ${svc.model.name}, threads ${threads})`,
        );
      });
    }
    if (f['identity-key']) readSecretKeyFile(resolve(f['identity-key'])); // fail here, not in the child
    const entry = join(this.config.root, 'bin', 'run.js');
    const r = await startVerifierDaemon(opts, entry, f.timeout, this.io);
    if (r.status === 'already-running') {
      this.out(`Verifier already running (pid ${r.pid}${r.url ? `, ${r.url}` : ', starting'}).`);
    } else {
      this.out(`Verifier started (pid ${r.pid}) at ${r.url} in ${r.startupMs} ms.`);
      this.out(`  model: ${r.model}`);
      this.out(`  log:   ${r.logFile}`);
      this.out(`  stop:  ${this.config.bin} verifier down`);
    }
    return r;
  }
}
