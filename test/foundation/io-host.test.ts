/**
 * The one I/O host (src/foundation/io-host.ts): a service's steps reach every host the same way —
 * the recording host keeps them as events, the daemon log writes them as structured log lines, and
 * plain steps throttle status updates.
 */
import { describe, expect, it } from 'vitest';
import { plainSteps, recordingHost, silentHost, type IoHost } from '../../src/foundation/io-host.js';
import { daemonLog } from '../../src/runtime/daemon/log.js';

/** A service as services are written: it reports through whatever host it is given. */
async function service(host: IoHost): Promise<number> {
  host.log('warn', 'cache cold', { entries: 0 });
  return host.step('Fetching', async (report) => {
    report('1 of 2 chunks');
    return 42;
  });
}

describe('IoHost', () => {
  it('the recording host keeps logs, steps and status in order', async () => {
    const host = recordingHost();
    expect(await service(host)).toBe(42);
    expect(host.lines).toEqual(['warn: cache cold']);
    expect(host.events.map((e) => `${e.kind} ${e.message}`)).toEqual([
      'log cache cold',
      'step Fetching',
      'status 1 of 2 chunks',
    ]);
    expect(host.events[0]?.fields).toEqual({ entries: 0 });
  });

  it('the daemon log is a host: steps become structured log lines', async () => {
    const lines: string[] = [];
    const log = daemonLog('info', (l) => lines.push(l), 'json');
    expect(await service(log)).toBe(42);
    const parsed = lines.map((l) => JSON.parse(l) as { level: string; msg: string; entries?: number });
    expect(parsed.map((p) => [p.level, p.msg])).toEqual([
      ['warn', 'cache cold'],
      ['info', 'Fetching...'],
      ['info', '  1 of 2 chunks'],
    ]);
    expect(parsed[0]?.entries).toBe(0);
  });

  it('plain steps print the title and throttle status updates', async () => {
    const out: string[] = [];
    const step = plainSteps((level, msg) => out.push(`${level} ${msg}`), 60_000);
    await step('Uploading', async (report) => {
      report('a');
      report('b');
    });
    expect(out).toEqual(['info Uploading...', 'info   a']);
    expect(await silentHost.step('x', async () => 'quiet')).toBe('quiet');
  });
});
