/**
 * `model prepare` from a published model (`model/<name>@<version>`): pulls the verified artifact
 * into a temporary directory (through the chunk cache, like `artifact pull`), gives it the
 * artifact.yaml a source directory would have (name, version and role from the signed manifest),
 * prepares from there into `out` and removes the temporary copy. The prepared artifact keeps the
 * name, so publishing it deduplicates against the very version it was pulled from.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pullArtifact } from '../pull.js';
import { resolveRef } from '../manifest-store.js';
import { parseRef } from '../ref.js';
import { UserError } from '../../foundation/errors.js';
import type { Io } from '../../foundation/output.js';
import type { Store } from '../../registry/store.js';
import type { TrustRoot } from '../../registry/trust.js';
import { prepareLoraModel, type PrepareOptions, type PrepareResult } from './prepare.js';

export interface PrepareFromRefOptions extends Omit<PrepareOptions, 'dir'> {
  ref: string;
  store: Store;
  trust: TrustRoot;
  cacheDir: string;
  io: Io;
}

export async function prepareFromRef(opts: PrepareFromRefOptions): Promise<PrepareResult> {
  const ref = parseRef(opts.ref);
  if (ref.kind !== 'model') {
    throw new UserError(`${opts.ref}: only models can be prepared (this is a ${ref.kind})`, {
      code: 'E_PREPARE',
      suggestion: 'Pass a model directory or a model/<name>@<version> ref.',
    });
  }
  const loaded = await resolveRef(opts.store, ref, opts.trust);
  const dir = mkdtempSync(join(tmpdir(), 'edgectl-prepare-'));
  try {
    await pullArtifact({
      store: opts.store,
      ref,
      trust: opts.trust,
      dir,
      cacheDir: opts.cacheDir,
      io: opts.io,
    });
    const m = loaded.manifest;
    const role = typeof m.meta.role === 'string' ? `role: ${m.meta.role}\n` : '';
    writeFileSync(join(dir, 'artifact.yaml'), `kind: model\nname: ${m.name}\nversion: ${m.version}\n${role}`);
    const { ref: _ref, store: _store, trust: _trust, cacheDir: _cache, io: _io, ...rest } = opts;
    return prepareLoraModel({ ...rest, dir });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
