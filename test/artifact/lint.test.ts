import { cpSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, runCli } from '../helpers/cli.js';

const work = mkdtempSync(join(tmpdir(), 'edgectl-lint-artifacts-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A project with one copy of a committed artifact directory, so each test can break it its own way. */
function project(name: string, source: string): string {
  const dir = join(work, name);
  cpSync(join(REPO_ROOT, source), join(dir, 'artifacts', 'x'), { recursive: true });
  writeFileSync(join(dir, 'edgectl.yaml'), 'registry: file:.edgectl/registry\n');
  return dir;
}

describe('edgectl lint: artifact directories', () => {
  it('passes on the committed artifacts and sites', async () => {
    const r = await runCli(['lint', '--json'], { cwd: REPO_ROOT });
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as { linters: string[]; files: number };
    expect(report.linters).toEqual(expect.arrayContaining(['sites', 'artifacts']));
    expect(report.files).toBeGreaterThanOrEqual(9);
  });

  it('names file, line and field of an invalid policy (exit 2)', async () => {
    const dir = project('bad-policy', 'artifacts/policies/default');
    writeFileSync(join(dir, 'artifacts/x/policy.yaml'), 'version: 1\nrouting:\n  default: sideways\n');
    const r = await runCli(['lint'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/artifacts\/x\/policy\.yaml:3: routing\.default:/);
  });

  it('refuses a symlink inside an artifact directory (exit 2)', async () => {
    const dir = project('symlink', 'artifacts/policies/default');
    symlinkSync('/etc/passwd', join(dir, 'artifacts/x/passwd'));
    const r = await runCli(['lint', '--json'], { cwd: dir });
    expect(r.code).toBe(2);
    const err = JSON.parse(r.stdout) as {
      error: { details: { problems: { file: string; message: string }[] } };
    };
    expect(err.error.details.problems[0]?.file).toMatch(/artifacts\/x/);
    expect(err.error.details.problems[0]?.message).toMatch(/passwd/);
  });

  it('reports a model directory missing its tokenizer (exit 2)', async () => {
    const dir = project('model', 'artifacts/models/draft');
    rmSync(join(dir, 'artifacts/x/tokenizer.json'));
    const r = await runCli(['lint'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/tokenizer\.json/);
  });
});
