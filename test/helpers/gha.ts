/**
 * Runs a GitHub Actions job's `run:` steps the way a runner does, for testing the workflow `edgectl
 * init` writes: in order, in the checkout, with bash `--noprofile --norc -eo pipefail`, the
 * workflow, job and step `env:` with `${{ vars.* }}`, `${{ secrets.* }}` and `${{ inputs.* }}`
 * filled in (unset ones are empty strings, as on GitHub), and GITHUB_OUTPUT, GITHUB_STEP_SUMMARY,
 * GITHUB_ENV and GITHUB_PATH files whose additions later steps see. `uses:` steps are skipped (the
 * caller has done the checkout and provides Node); any other `${{ }}` expression is an error, so a
 * workflow change that this emulation cannot honour fails the test instead of passing vacuously.
 * The first failing step ends the job.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { parse } from 'yaml';

export interface WorkflowStep {
  name?: string;
  id?: string;
  uses?: string;
  run?: string;
  if?: string;
  with?: Record<string, unknown>;
  env?: Record<string, string>;
}
export interface WorkflowJob {
  if?: string;
  'runs-on': string;
  env?: Record<string, string>;
  concurrency?: { group: string; 'cancel-in-progress'?: boolean };
  steps: WorkflowStep[];
}
export interface Workflow {
  name: string;
  on: Record<string, unknown>;
  env?: Record<string, string>;
  jobs: Record<string, WorkflowJob>;
}

export interface JobContext {
  vars?: Record<string, string>;
  secrets?: Record<string, string>;
  inputs?: Record<string, string>;
  /** The runner's environment before the workflow's own (PATH, HOME...). */
  baseEnv: NodeJS.ProcessEnv;
  cwd: string;
}

export interface StepResult {
  name: string;
  status: number;
  ms: number;
  stdout: string;
  stderr: string;
}
export interface JobResult {
  ok: boolean;
  steps: StepResult[];
  /** The step that failed, if any. */
  failed?: StepResult;
  outputs: Record<string, Record<string, string>>;
  summary: string;
}

export function readWorkflow(file: string): Workflow {
  return parse(readFileSync(file, 'utf8'), { strict: true, uniqueKeys: true }) as Workflow;
}

function expand(text: string, ctx: JobContext): string {
  return text.replace(/\$\{\{\s*([^}]*?)\s*\}\}/g, (_, expr: string) => {
    const m = /^(vars|secrets|inputs)\.([A-Za-z_][A-Za-z0-9_]*)$/.exec(expr);
    if (!m) throw new Error(`expression \${{ ${expr} }} is not supported by this emulation`);
    const scope = ctx[m[1] as 'vars' | 'secrets' | 'inputs'] ?? {};
    return scope[m[2] ?? ''] ?? '';
  });
}

function expandEnv(env: Record<string, string> | undefined, ctx: JobContext): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env ?? {})) out[k] = expand(String(v), ctx);
  return out;
}

/** KEY=value lines of a GITHUB_OUTPUT/GITHUB_ENV file (the heredoc form is not used by edgectl's). */
function keyValues(file: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}

/** Runs one step's script; a timeout kills it (status 128). Async: a job takes a while. */
function runScript(script: string, cwd: string, env: NodeJS.ProcessEnv): Promise<Omit<StepResult, 'name'>> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['--noprofile', '--norc', '-eo', 'pipefail', script], { cwd, env });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 300_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ status: code ?? 128, stdout, stderr, ms: Math.round(performance.now() - started) });
    });
  });
}

export async function runJob(wf: Workflow, jobName: string, ctx: JobContext): Promise<JobResult> {
  const job = wf.jobs[jobName];
  if (!job) throw new Error(`no job ${jobName}`);
  const files = mkdtempSync(join(tmpdir(), `gha-${jobName}-`));
  const summaryFile = join(files, 'summary');
  const pathFile = join(files, 'path');
  const envFile = join(files, 'env');
  for (const f of [summaryFile, pathFile, envFile]) writeFileSync(f, '');
  const jobEnv = { ...expandEnv(wf.env, ctx), ...expandEnv(job.env, ctx) };
  const result: JobResult = { ok: true, steps: [], outputs: {}, summary: '' };
  for (const [i, step] of job.steps.entries()) {
    if (!step.run) continue;
    const outputFile = join(files, `output-${i}`);
    writeFileSync(outputFile, '');
    const added = readFileSync(pathFile, 'utf8').split('\n').filter(Boolean).reverse();
    const env = {
      ...ctx.baseEnv,
      CI: 'true',
      GITHUB_ACTIONS: 'true',
      ...jobEnv,
      ...keyValues(envFile),
      ...expandEnv(step.env, ctx),
      PATH: [...added, ctx.baseEnv.PATH ?? ''].join(delimiter),
      GITHUB_OUTPUT: outputFile,
      GITHUB_STEP_SUMMARY: summaryFile,
      GITHUB_PATH: pathFile,
      GITHUB_ENV: envFile,
      RUNNER_TEMP: files,
    };
    const script = join(files, `step-${i}.sh`);
    writeFileSync(script, expand(step.run, ctx));
    const res = {
      name: step.name ?? step.run.split('\n')[0] ?? '',
      ...(await runScript(script, ctx.cwd, env)),
    };
    result.steps.push(res);
    if (step.id) result.outputs[step.id] = keyValues(outputFile);
    if (res.status !== 0) {
      result.ok = false;
      result.failed = res;
      break;
    }
  }
  result.summary = readFileSync(summaryFile, 'utf8');
  return result;
}
