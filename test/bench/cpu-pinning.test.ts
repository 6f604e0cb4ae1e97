import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { pinProcess, planCores } from '../../src/bench/cpu-pinning.js';

const hasTaskset = process.platform === 'linux' && spawnSync('taskset', ['--version']).status === 0;

describe('benchmark core pinning', () => {
  it('gives the server the first cores and the client the rest, when there are spare cores', () => {
    expect(planCores(1, 2)).toEqual({ server: '0', client: '1' });
    expect(planCores(2, 8)).toEqual({ server: '0-1', client: '2-7' });
    expect(planCores(1, 1)).toBeUndefined();
    expect(planCores(2, 2)).toBeUndefined();
    expect(planCores(0, 4)).toBeUndefined();
  });

  it.skipIf(!hasTaskset || planCores(1) === undefined)('pins every thread of a live process', async () => {
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 20000)'], { stdio: 'ignore' });
    try {
      await new Promise((r) => setTimeout(r, 200));
      const pid = child.pid as number;
      expect(pinProcess(pid, '0')).toBe(true);
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      expect(status).toMatch(/^Cpus_allowed_list:\s*0$/m);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('reports false for a process that does not exist', () => {
    expect(pinProcess(2 ** 22 + 12345, '0')).toBe(false);
  });
});
