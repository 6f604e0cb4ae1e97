/**
 * Core pinning for benchmarks that run a server and its simulated clients on one machine: the
 * verifier child gets its own cores and the benchmark process (the simulated edge sites, the
 * delay proxy) the rest, as they would be on separate machines. Without it the two processes'
 * threads (V8's GC helpers, ONNX Runtime) migrate across the same cores and the verifier's CPU per
 * pass depends on how busy the clients happen to be, which biases a comparison between a mode whose
 * clients draft (speculative) and one whose clients idle (cloud-only).
 *
 * Linux only, through util-linux `taskset` (Node has no affinity API); elsewhere, or with too few
 * cores, the plan is undefined and the benchmark runs unpinned and says so in its report.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';

export interface CorePlan {
  /** CPU list (taskset syntax) for the server under test. */
  server: string;
  /** CPU list for the benchmark's own process. */
  client: string;
}

/** Cores 0..serverCores-1 for the server, the rest for the client; undefined without spare cores. */
export function planCores(serverCores: number, cores: number = availableParallelism()): CorePlan | undefined {
  if (!Number.isInteger(serverCores) || serverCores < 1 || cores <= serverCores) return undefined;
  return { server: cpuRange(0, serverCores - 1), client: cpuRange(serverCores, cores - 1) };
}

function cpuRange(from: number, to: number): string {
  return from === to ? String(from) : `${from}-${to}`;
}

/**
 * Pins every thread of process `pid` (existing ones; new threads inherit the mask) to `cpus`.
 * Returns false, changing nothing, where that is not possible (no taskset, not Linux, no permission).
 */
export function pinProcess(pid: number, cpus: string): boolean {
  // `taskset --all-tasks` succeeds without doing anything for a pid that does not exist.
  if (process.platform !== 'linux' || !existsSync(`/proc/${pid}/task`)) return false;
  const r = spawnSync('taskset', ['--all-tasks', '--cpu-list', '--pid', cpus, String(pid)], {
    stdio: 'ignore',
    timeout: 5000,
  });
  return r.status === 0;
}
