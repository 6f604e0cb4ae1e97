/**
 * bin/run.js started by an older Node (the system's Node 20 here, as `npm install -g` leaves it on
 * PATH) runs the CLI under the bundled Node 22 (npm package `node`) and passes its exit status
 * through; without a usable Node 22 it says what to do and exits 1. Skipped, saying so, where the
 * system Node is already 22 or newer (nothing to re-run) or missing.
 */
import { spawnSync } from 'node:child_process';
import { delimiter } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, RUN_JS } from '../helpers/cli.js';

const env: NodeJS.ProcessEnv = { ...process.env, CI: '1' };
env.PATH = (process.env.PATH ?? '')
  .split(delimiter)
  .filter((p) => !p.includes('node_modules'))
  .join(delimiter);
delete env.EDGECTL_REEXEC;
const probe = spawnSync('node', ['-p', 'process.versions.node'], { env, encoding: 'utf8' });
const systemMajor = probe.status === 0 ? Number(probe.stdout.split('.')[0]) : undefined;
const old = systemMajor !== undefined && systemMajor < 22;
if (!old) console.warn(`SKIPPED: the system node is ${probe.stdout.trim() || 'missing'}, not older than 22`);

const run = (args: string[], extra: NodeJS.ProcessEnv = {}) =>
  spawnSync('node', [RUN_JS, ...args], { cwd: REPO_ROOT, env: { ...env, ...extra }, encoding: 'utf8' });

describe.skipIf(!old)('bin/run.js on an older Node', () => {
  it('runs the CLI on the bundled Node 22 and passes the exit status through', () => {
    const v = run(['--version']);
    expect(v.status, v.stderr).toBe(0);
    expect(v.stdout).toMatch(/ node-v22\./);
    const unknown = run(['no-such-command']);
    expect(unknown.status).toBe(127);
  });

  it('says what to do when the bundled Node cannot be used', () => {
    const r = run(['--version'], { EDGECTL_REEXEC: '1' });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('edgectl needs Node 22 or newer');
    expect(r.stderr).toContain('Reinstall edgectl');
  });
});
