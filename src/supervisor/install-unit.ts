/**
 * The shared half of `site install-unit` and `verifier install-unit`: the command line the unit
 * runs (this Node, this edgectl's bin/run.js, so the unit starts exactly the edgectl that wrote it),
 * and printing or writing the unit. Printing never needs root; `--out` writes the file (mode 0644,
 * as systemd expects) and says how to enable it.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { OperationalError } from '../foundation/errors.js';
import { edgectlPackage } from '../foundation/package-root.js';
import { renderUnit, type UnitSpec } from './systemd-unit.js';

export interface InstallUnitResult {
  /** The unit's file name, e.g. edgectl-site-store-001.service. */
  name: string;
  /** Where it was written (--out), or undefined when printed. */
  path: string | undefined;
  unit: string;
  /** Commands that install and start it. */
  next: string[];
}

/** What `install-unit` prints at a terminal: the unit itself, or where it went and what to run next. */
export function describeInstallUnit(r: InstallUnitResult): string {
  if (r.path === undefined) return r.unit;
  return [`Wrote ${r.path}. Then:`, ...r.next.map((c) => `  ${c}`)].join('\n') + '\n';
}

/** Documentation= of the units: the README of the installed package (it ships with it). */
export function docsUrl(): string {
  return `file://${join(edgectlPackage().root, 'README.md')}`;
}

/** `<node> <edgectl>/bin/run.js <args>`: the Node running now is the one edgectl needs (22+). */
export function edgectlExec(args: string[]): string[] {
  return [process.execPath, join(edgectlPackage().root, 'bin', 'run.js'), ...args];
}

export function installUnit(name: string, spec: UnitSpec, out: string | undefined): InstallUnitResult {
  const unit = renderUnit(spec);
  const target = out === undefined ? undefined : resolve(out);
  if (target) {
    try {
      mkdirSync(dirname(target), { recursive: true });
      writeFileSync(target, unit, { mode: 0o644 });
    } catch (err) {
      throw new OperationalError(`cannot write ${target}: ${(err as Error).message}`, {
        code: 'E_UNIT_WRITE',
        suggestion: 'write it somewhere you may (or with sudo), or print it without --out and redirect',
        cause: err,
      });
    }
  }
  const installed = `/etc/systemd/system/${name}`;
  const from = target ?? name;
  const next = [
    ...(target && target === installed ? [] : [`sudo install -m 0644 ${from} ${installed}`]),
    `sudo useradd --system --no-create-home --shell /usr/sbin/nologin ${spec.user}  # once`,
    'sudo systemctl daemon-reload',
    `sudo systemctl enable --now ${basename(name)}`,
    `journalctl -u ${basename(name)} -f`,
  ];
  return { name, path: target, unit, next };
}
