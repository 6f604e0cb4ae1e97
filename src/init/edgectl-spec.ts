/**
 * Which edgectl a scaffolded repository installs: the `edgectl` entry of its package.json, which
 * the workflow's install step (`npm ci` / `npm install`) and every developer's `npm install` read.
 * By default it is exactly the version that ran `init`. `init --edgectl-spec` takes anything npm
 * installs: a version or range, a tarball URL, a git spec (`github:org/edgectl#v0.1.0`,
 * `git+https://...`), or a `file:` spec. A local tarball path (`./edgectl-0.1.0.tgz`) is copied into
 * the repository (`vendor/`) and pinned as `file:vendor/<name>`, because a path on this machine
 * does not exist on a CI runner; commit it (or put it in Git LFS).
 */
import { existsSync, statSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { UserError } from '../foundation/errors.js';

export interface EdgectlDependency {
  /** The package.json dependency spec. */
  spec: string;
  /** A local tarball to copy into the repository at `to` (relative), which `spec` names. */
  vendored?: { from: string; to: string };
}

const TARBALL = /\.(tgz|tar\.gz)$/i;
/** Specs npm resolves without a local file: URLs, git hosts, aliases, file: paths, tags. */
const PASS_THROUGH = /^(https?:|git\+|git:|github:|gitlab:|bitbucket:|gist:|file:|npm:)/i;

export function edgectlDependency(input: string | undefined, version: string): EdgectlDependency {
  if (input === undefined) return { spec: version };
  const spec = input.trim();
  if (spec === '') {
    throw new UserError('--edgectl-spec is empty', {
      code: 'E_INIT_EDGECTL_SPEC',
      suggestion: `give a version (${version}), a tarball (./edgectl-${version}.tgz or a URL) or a git spec`,
    });
  }
  if (PASS_THROUGH.test(spec)) return { spec };
  if (TARBALL.test(spec) || spec.startsWith('.') || spec.startsWith('/')) {
    const from = resolve(spec);
    if (!existsSync(from) || !statSync(from).isFile() || !TARBALL.test(from)) {
      throw new UserError(`--edgectl-spec ${spec}: no such tarball`, {
        code: 'E_INIT_EDGECTL_SPEC',
        suggestion: 'build one with `npm pack` in the edgectl checkout, or give a version, URL or git spec',
        details: { path: from },
      });
    }
    const to = `vendor/${basename(from)}`;
    return { spec: `file:${to}`, vendored: { from, to } };
  }
  // A version, a range, a dist-tag or a GitHub shorthand (org/repo#ref): npm's business.
  return { spec };
}
