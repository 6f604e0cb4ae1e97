import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadProjectConfig } from '../../src/config/project.js';
import { UserError } from '../../src/foundation/errors.js';

function tempProject(yaml?: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'edgectl-cfg-'));
  if (yaml !== undefined) writeFileSync(join(dir, 'edgectl.yaml'), yaml);
  return dir;
}

describe('loadProjectConfig', () => {
  it('defaults to a directory registry under the working directory', () => {
    const dir = tempProject();
    const cfg = loadProjectConfig({ cwd: dir, env: {} });
    expect(cfg.registry).toBe(`file:${join(dir, '.edgectl/registry')}`);
    expect(cfg.registrySource).toBe('default');
    expect(cfg.trustPath).toBe(join(dir, 'trust/root.json'));
  });

  it('finds edgectl.yaml in a parent and resolves paths against it', () => {
    const dir = tempProject('registry: file:reg\ntrust: t/root.json\nkeys:\n  artifacts: k/a.key\n');
    const sub = join(dir, 'a', 'b');
    mkdirSync(sub, { recursive: true });
    const cfg = loadProjectConfig({ cwd: sub, env: {} });
    expect(cfg.root).toBe(dir);
    expect(cfg.registry).toBe(`file:${join(dir, 'reg')}`);
    expect(cfg.registrySource).toBe('config');
    expect(cfg.keys.artifacts).toBe(join(dir, 'k/a.key'));
  });

  it('env overrides the file and a flag overrides both', () => {
    const dir = tempProject('registry: file:reg\n');
    const env = { EDGECTL_REGISTRY: 's3://bucket/prefix' };
    expect(loadProjectConfig({ cwd: dir, env }).registry).toBe('s3://bucket/prefix');
    const cfg = loadProjectConfig({ cwd: dir, env, registryFlag: 'file:/x/y' });
    expect(cfg.registry).toBe('file:/x/y');
    expect(cfg.registrySource).toBe('flag');
  });

  it('names file, line and field of an unknown key', () => {
    const dir = tempProject('registry: file:reg\nkeys:\n  artifact: a.key\n');
    let err: unknown;
    try {
      loadProjectConfig({ cwd: dir, env: {} });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).exitCode).toBe(2);
    expect((err as UserError).message).toMatch(/edgectl\.yaml:3: keys\.artifact: unknown field "artifact"/);
  });

  it('reports YAML syntax errors with their line', () => {
    const dir = tempProject('registry: file:reg\nkeys: [unclosed\n');
    expect(() => loadProjectConfig({ cwd: dir, env: {} })).toThrow(/edgectl\.yaml:\d+:/);
  });
});
