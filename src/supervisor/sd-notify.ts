/**
 * Readiness for systemd (Type=notify units, systemd-unit.ts): when NOTIFY_SOCKET is set, the
 * foreground daemon runs `systemd-notify --ready --pid=<its pid>` once it serves, and
 * `systemd-notify STOPPING=1` when it starts draining. Node cannot send on a Unix datagram socket
 * itself, hence the helper, which waits (it is not run with --no-block) until systemd has taken the
 * message, so the notification is not lost when the helper exits first. The unit needs
 * NotifyAccess=all, since the sender is the helper and not the main process. Failures are logged,
 * never fatal: without a notification systemd times the start out and says so.
 */
import { spawn } from 'node:child_process';
import type { Io } from '../foundation/output.js';

export type NotifyState = 'ready' | 'stopping';

export function notifySystemd(
  state: NotifyState,
  io: Io,
  env: NodeJS.ProcessEnv = process.env,
): Promise<boolean> {
  if (!env.NOTIFY_SOCKET) return Promise.resolve(false);
  const args =
    state === 'ready'
      ? ['--ready', `--pid=${process.pid}`, '--status=serving']
      : ['STOPPING=1', '--status=draining'];
  return new Promise((resolve) => {
    const child = spawn('systemd-notify', args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    const done = (ok: boolean, why?: string) => {
      clearTimeout(timer);
      if (!ok) io.log('warn', `systemd-notify ${args.join(' ')} failed: ${why ?? 'unknown error'}`);
      resolve(ok);
    };
    child.on('error', (err) => done(false, err.message));
    child.on('close', (code) => (code === 0 ? done(true) : done(false, stderr.trim() || `exit ${code}`)));
  });
}
