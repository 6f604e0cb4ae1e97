// `npm run bench:speculative`: runs `edgectl bench speculative` on the fixture model pair — all three
// modes on the general prompts with adaptive k at 20 ms RTT and 16 streams — then speculative-only
// on the support prompts with the base draft, the `support` adapter and the `support-bad` adapter,
// and prints one JSON report: the main run (cloud-only is its baseline) plus the adapter comparison.
// The main run generates a fixed 128 tokens per response (--ignore-eos, as serving benchmarks do), so
// decoding, not the prompt prefill both modes share, dominates the verifier cost being compared; the
// adapter runs stop at end-of-sequence. The main run repeats every mode three times in alternating
// order (the report pools them and lists each repeat's ratios) with the verifier pinned to its own
// core and the simulated sites to the others, plus a control: cloud-only again while the simulated
// sites draft in the background, which shows what busy clients on this one machine add to the
// verifier's CPU by themselves. Extra arguments are passed to the main run (e.g. `-- --limit 16`).
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const node = process.execPath;
const bin = join(root, 'bin', 'run.js');
const models = join(root, 'artifacts', 'models');
const adapters = join(root, 'artifacts', 'adapters');
const prompts = join(root, 'artifacts', 'prompts');

function bench(args) {
  process.stderr.write(`$ edgectl bench speculative ${args.join(' ')}\n`);
  const r = spawnSync(
    node,
    [
      bin,
      'bench',
      'speculative',
      '--draft',
      join(models, 'draft'),
      '--verifier',
      join(models, 'verifier'),
      ...args,
      '--json',
    ],
    { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 * 1024 * 1024 },
  );
  if (r.status !== 0) {
    process.stderr.write(r.stdout);
    process.stderr.write(`bench run failed with exit code ${r.status}\n`);
    process.exit(r.status ?? 1);
  }
  return JSON.parse(r.stdout);
}

const main = bench([
  '--prompts',
  join(prompts, 'general.jsonl'),
  '--k',
  'auto',
  '--rtt-ms',
  '20',
  '--concurrency',
  '16',
  '--max-tokens',
  '128',
  '--ignore-eos',
  '--repeat',
  '3',
  '--busy-client-control',
  ...process.argv.slice(2),
]);

const adapterRun = (adapter) =>
  bench([
    '--prompts',
    join(prompts, 'support.jsonl'),
    '--modes',
    'speculative',
    '--k',
    '4',
    '--concurrency',
    '4',
    '--no-micro',
    ...(adapter ? ['--adapter', join(adapters, adapter)] : []),
  ]).modes.speculative;

const base = adapterRun(undefined);
const support = adapterRun('support');
const supportBad = adapterRun('support-bad');
const summary = (m) => ({
  acceptance: m.acceptance,
  tokensPerVerifyRound: m.tokensPerVerifyRound,
  outputTokens: m.outputTokens,
  verifyRounds: m.verifyRounds,
  identical: m.identicalToCloud ?? null,
});

const targets = [
  ...main.targets,
  {
    name: 'support prompts: acceptance with `support` adapter above the base draft',
    target: '> base',
    value: support.acceptance,
    baseline: base.acceptance,
    met: support.acceptance > base.acceptance,
  },
  {
    name: 'support prompts: acceptance with `support-bad` adapter below the base draft',
    target: '< base',
    value: supportBad.acceptance,
    baseline: base.acceptance,
    met: supportBad.acceptance < base.acceptance,
  },
];

process.stdout.write(
  `${JSON.stringify(
    {
      benchmark: 'speculative',
      date: main.date,
      machine: main.machine,
      main,
      adapters: {
        prompts: 'support.jsonl',
        k: 4,
        base: summary(base),
        support: summary(support),
        supportBad: summary(supportBad),
      },
      targets,
    },
    null,
    2,
  )}\n`,
);
