/**
 * `edgectl site add --index` (in process): the flag writes `assignments.indexes` in
 * sites/<name>.yaml, which loads back through the site schema as the site's desired indexes; a ref
 * of another kind, a malformed one, or two versions of one index are refused (exit 2) naming the
 * flag and showing a good value, before any key or file is written.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { afterEach, describe, expect, it } from 'vitest';
import { ExitCode, UserError } from '../../src/foundation/errors.js';
import { addSite } from '../../src/fleet/site-add.js';
import { siteFileSchema, toDeclaration } from '../../src/fleet/site-schema.js';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

function project() {
  const root = mkdtempSync(join(tmpdir(), 'edgectl-site-add-'));
  dirs.push(root);
  return { sitesDir: join(root, 'sites'), dataDir: join(root, 'data') };
}

function refused(fn: () => unknown): UserError {
  try {
    fn();
  } catch (err) {
    if (err instanceof UserError) return err;
    throw err;
  }
  throw new Error('not refused');
}

describe('site add --index', () => {
  it('writes assignments.indexes, read back as the desired indexes', () => {
    const p = project();
    const r = addSite({
      ...p,
      name: 'kiosk-001',
      labels: { tier: 'branch' },
      assignments: { model: 'model/draft@1.0.0', indexes: ['index/kb@1.0.0', 'index/menu@2.0.0'] },
    });
    const file = parse(readFileSync(r.file, 'utf8')) as unknown;
    expect(file).toMatchObject({ assignments: { indexes: ['index/kb@1.0.0', 'index/menu@2.0.0'] } });
    const { assignments } = toDeclaration(siteFileSchema.parse(file));
    expect(assignments.indexes).toEqual(['index/kb@1.0.0', 'index/menu@2.0.0']);
  });

  it('writes no indexes field without the flag', () => {
    const p = project();
    const r = addSite({ ...p, name: 'kiosk-002', assignments: { indexes: [] } });
    expect(readFileSync(r.file, 'utf8')).not.toContain('indexes');
  });

  it.each([
    [
      'adapter/support@1.0.0',
      /^--index: ref "adapter\/support@1\.0\.0" is a adapter; the indexes slot takes index refs/,
    ],
    ['kb@1.0.0', /^--index: /],
  ])('refuses %s with exit 2 naming --index, writing nothing', (ref, message) => {
    const p = project();
    const err = refused(() => addSite({ ...p, name: 'kiosk-003', assignments: { indexes: [ref] } }));
    expect([err.code, err.exitCode]).toEqual(['E_SITE_INPUT', ExitCode.Usage]);
    expect(err.message).toMatch(message);
    expect(err.suggestion).toBe('pass a published ref of that kind, e.g. --index index/kb@1.0.0');
    expect(existsSync(join(p.sitesDir, 'kiosk-003.yaml'))).toBe(false);
    expect(existsSync(join(p.dataDir, 'site.key'))).toBe(false);
  });

  it('refuses two versions of one index', () => {
    const p = project();
    const err = refused(() =>
      addSite({ ...p, name: 'kiosk-004', assignments: { indexes: ['index/kb@1.0.0', 'index/kb@1.1.0'] } }),
    );
    expect(err.exitCode).toBe(ExitCode.Usage);
    expect(err.message).toMatch(/^--index: index index\/kb is listed twice/);
    expect(err.suggestion).toBe('pass --index once per name, with the version the site should run');
  });
});
