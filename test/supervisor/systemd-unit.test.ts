/**
 * The units `site install-unit` and `verifier install-unit` print pass systemd's own checks:
 * `systemd-analyze verify` finds nothing to say and `systemd-analyze security --offline=true` rates
 * their exposure at most 4.0 (it was 8.7 for the hand-written unit the docs had). They run this
 * checkout's bin/run.js under the Node running the CLI, as Type=notify, with the hardening the
 * issue asks for. Where systemd-analyze is missing these checks are skipped with a message saying
 * so (.ci/run installs systemd); the unit's content is checked everywhere. The readiness
 * notification itself is checked against a real socket-less run: without NOTIFY_SOCKET nothing is
 * spawned, and with a NOTIFY_SOCKET that nobody listens on the failure is logged, not fatal.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InstallUnitResult } from '../../src/supervisor/install-unit.js';
import { notifySystemd } from '../../src/supervisor/sd-notify.js';
import { quoteExecArg } from '../../src/supervisor/systemd-unit.js';
import { NODE, REPO_ROOT, runCli } from '../helpers/cli.js';

const analyze = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
const haveAnalyze = analyze.status === 0;
if (!haveAnalyze) {
  console.warn(
    'SKIPPED: systemd-analyze is not installed; `apt-get install -y systemd` (as .ci/run does) to run these checks',
  );
}

const haveNotify =
  spawnSync('systemd-notify', ['--version']).status === 0 && spawnSync('python3', ['--version']).status === 0;

/** Receives datagrams until systemd-notify's BARRIER=1 (or READY=1 without one), then exits 0. */
const RECEIVER = `
import array, os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(20)
print('bound', flush=True)
while True:
    data, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(16 * 4))
    for level, kind, raw in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds = array.array('i')
            fds.frombytes(raw[: len(raw) - len(raw) % fds.itemsize])
            for fd in fds:
                os.close(fd)
    text = data.decode()
    print(text, flush=True)
    if 'BARRIER=1' in text:
        break
`;

async function waitFor(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('systemd units', () => {
  let tmp: string;
  let model: string;
  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), 'edgectl-unit-'));
    model = join(REPO_ROOT, 'artifacts/models/verifier');
    mkdirSync(join(tmp, 'units'));
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  async function units(): Promise<{ site: string; verifier: string }> {
    const site = await runCli(['site', 'install-unit', 'store-001', '--listen', '0.0.0.0:8081'], {
      cwd: tmp,
    });
    expect(site.code, site.stderr).toBe(0);
    const out = join(tmp, 'units/edgectl-verifier.service');
    const v = await runCli(
      ['verifier', 'install-unit', '--model', model, '--threads', '2', '--out', out, '--json'],
      {
        cwd: tmp,
      },
    );
    expect(v.code, v.stderr).toBe(0);
    const result = v.json<InstallUnitResult>();
    expect(result.path).toBe(out);
    expect(result.next).toContain('sudo systemctl enable --now edgectl-verifier.service');
    expect(readFileSync(out, 'utf8')).toBe(result.unit);
    return { site: site.stdout, verifier: result.unit };
  }

  it('print hardened Type=notify units that run this edgectl under Node 22', async () => {
    const { site, verifier } = await units();
    const node = spawnSync(NODE, ['-p', 'process.execPath'], { encoding: 'utf8' }).stdout.trim();
    expect(site).toContain(
      `ExecStart=${node} ${REPO_ROOT}/bin/run.js site up store-001 --foreground --data-dir /var/lib/edgectl/store-001 --listen 0.0.0.0:8081`,
    );
    expect(verifier).toContain(
      `ExecStart=${node} ${REPO_ROOT}/bin/run.js verifier up --foreground --model ${model}`,
    );
    for (const unit of [site, verifier]) {
      for (const line of [
        'Type=notify',
        'NotifyAccess=all',
        'User=edgectl',
        'ProtectSystem=strict',
        'NoNewPrivileges=yes',
        'PrivateTmp=yes',
        'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX',
        'CapabilityBoundingSet=',
        'SystemCallFilter=@system-service',
        'Restart=on-failure',
      ])
        expect(unit.split('\n'), line).toContain(line);
      expect(unit).not.toMatch(/^MemoryDenyWriteExecute=/m);
    }
    expect(site).toContain('ReadWritePaths=/var/lib/edgectl/store-001');
    expect(site).toContain('StateDirectory=edgectl/store-001');
    expect(verifier).toContain('ReadWritePaths=/var/lib/edgectl/verifier');
  });

  it('quote ExecStart words so systemd reads them literally', () => {
    expect(quoteExecArg('/opt/edgectl/bin/run.js')).toBe('/opt/edgectl/bin/run.js');
    expect(quoteExecArg('/srv/my models/v 1')).toBe('"/srv/my models/v 1"');
    expect(quoteExecArg('50%')).toBe('50%%');
    expect(quoteExecArg('$HOME')).toBe('$$HOME');
  });

  it('refuse a verifier model that is not a directory, and a bad user name', async () => {
    const r = await runCli(['verifier', 'install-unit', '--model', 'model/verifier@1.0.0', '--json'], {
      cwd: tmp,
    });
    expect(r.code).toBe(2);
    expect(r.json<{ error: { code: string; suggestion: string } }>().error.suggestion).toContain(
      'artifact pull',
    );
    const u = await runCli(['site', 'install-unit', 's1', '--user', 'Bad User', '--json'], { cwd: tmp });
    expect(u.code).toBe(2);
    expect(u.json<{ error: { code: string } }>().error.code).toBe('E_UNIT_USER');
  });

  it.skipIf(!haveAnalyze)(
    'pass systemd-analyze verify and rate at most 4.0 in systemd-analyze security',
    async () => {
      // The verifier's unit is in units/ already (--out).
      const { site } = await units();
      const dir = join(tmp, 'units');
      writeFileSync(join(dir, 'edgectl-site-store-001.service'), site);
      for (const name of ['edgectl-site-store-001.service', 'edgectl-verifier.service']) {
        const verify = spawnSync('systemd-analyze', ['verify', join(dir, name)], { encoding: 'utf8' });
        expect(verify.status, verify.stderr).toBe(0);
        // Anything it prints is a problem (unknown keys, bad values, missing executables).
        expect(verify.stdout + verify.stderr, name).toBe('');
        const security = spawnSync('systemd-analyze', ['security', '--offline=true', join(dir, name)], {
          encoding: 'utf8',
          env: { ...process.env, SYSTEMD_COLORS: '0' },
        });
        const m = /Overall exposure level for \S+: (\d+\.\d+)/.exec(security.stdout);
        expect(m, security.stdout + security.stderr).not.toBeNull();
        expect(Number(m?.[1]), `${name}\n${security.stdout}`).toBeLessThanOrEqual(4.0);
      }
    },
  );

  it('notifies systemd only under a unit, and a failed notification is logged, not fatal', async () => {
    const logs: string[] = [];
    const io = {
      log: (_level: string, msg: string) => logs.push(msg),
    } as unknown as Parameters<typeof notifySystemd>[1];
    expect(await notifySystemd('ready', io, { PATH: process.env.PATH })).toBe(false);
    expect(logs).toEqual([]);
    const socket = join(tmp, 'no-such-notify-socket');
    const sent = await notifySystemd('ready', io, { PATH: process.env.PATH, NOTIFY_SOCKET: socket });
    expect(sent).toBe(false);
    expect(logs.join('\n')).toMatch(/systemd-notify --ready --pid=\d+ --status=serving failed/);
  });

  it.skipIf(!haveNotify)('sends READY=1 with its pid to a listening NOTIFY_SOCKET', async () => {
    // A stand-in for systemd: a Unix datagram socket that prints what it receives and closes any
    // passed descriptors (systemd-notify waits on that barrier before it exits).
    const socket = join(tmp, 'notify.sock');
    const receiver = spawn('python3', ['-c', RECEIVER, socket], { stdio: ['ignore', 'pipe', 'pipe'] });
    let received = '';
    receiver.stdout.setEncoding('utf8').on('data', (d: string) => (received += d));
    const closed = new Promise<number | null>((resolve) => receiver.on('close', resolve));
    try {
      await waitFor(() => received.includes('bound'));
      const io = { log: () => undefined } as unknown as Parameters<typeof notifySystemd>[1];
      expect(await notifySystemd('ready', io, { PATH: process.env.PATH, NOTIFY_SOCKET: socket })).toBe(true);
      expect(await closed).toBe(0);
      expect(received).toContain('READY=1');
      expect(received).toContain(`MAINPID=${process.pid}`);
      expect(received).toContain('STATUS=serving');
    } finally {
      receiver.kill();
    }
  });
});
