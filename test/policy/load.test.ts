/**
 * Loading a policy directory: defaults for every optional section, and clear errors (exit 2) for a
 * missing directory, a missing policy.yaml and invalid fields (file:line: field: message).
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { UserError } from '../../src/foundation/errors.js';
import { loadPolicyDir } from '../../src/policy/load.js';
import { REPO_ROOT } from '../helpers/cli.js';

const dirs: string[] = [];
function policyDir(yaml: string | undefined): string {
  const dir = mkdtempSync(join(tmpdir(), 'edgectl-policy-'));
  dirs.push(dir);
  if (yaml !== undefined) writeFileSync(join(dir, 'policy.yaml'), yaml);
  return dir;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function errorOf(fn: () => unknown): UserError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    return err as UserError;
  }
  throw new Error('expected a UserError');
}

describe('loadPolicyDir', () => {
  it('fills every optional section with the schema defaults', () => {
    const p = loadPolicyDir(policyDir('version: 1\nrouting:\n  default: edge\n'));
    expect(p.routing).toEqual({
      default: 'edge',
      rules: [],
      overrides: ['edge', 'speculative', 'cloud'],
      speculative: { minDraftTokens: 1, maxDraftTokens: 8, minDraftConfidence: 0.05 },
    });
    expect(p.redaction).toEqual({ enabled: false, detectors: [], patterns: [] });
    expect(p.block).toEqual([]);
    expect(p.abstain).toEqual({});
    expect(p.verifier).toEqual({ fallback: 'error', timeoutMs: 5000 });
    expect(p.circuitBreaker).toEqual({ failureThreshold: 5, openSeconds: 30 });
  });

  it('loads the shipped default policy', () => {
    const p = loadPolicyDir(join(REPO_ROOT, 'artifacts/policies/default'));
    expect(p.verifier.fallback).toBe('edge-unverified');
    expect(p.redaction.detectors).toContain('iban');
  });

  it('names a missing directory and a missing policy.yaml', () => {
    const missing = errorOf(() => loadPolicyDir('/nonexistent/policy', 'generations/x/policy'));
    expect(missing.exitCode).toBe(2);
    expect(missing.message).toBe('policy directory generations/x/policy does not exist');
    const empty = policyDir(undefined);
    mkdirSync(join(empty, 'sub'));
    const noFile = errorOf(() => loadPolicyDir(empty, 'pol'));
    expect(noFile.message).toBe('pol/policy.yaml does not exist');
    expect(noFile.suggestion).toContain('policy.yaml');
  });

  it('reports invalid fields with file, line and field', () => {
    const dir = policyDir(
      'version: 1\nrouting:\n  default: edge\n  overrides: [sideways]\nredaction:\n  phoneRegions: [XX]\n',
    );
    const err = errorOf(() => loadPolicyDir(dir, 'pol'));
    expect(err.exitCode).toBe(2);
    expect(err.message).toContain('pol/policy.yaml:4: routing.overrides.0:');
    expect(err.message).toContain(
      'pol/policy.yaml:6: redaction.phoneRegions.0: must be a supported ISO 3166',
    );
  });

  it('refuses a draft confidence floor outside [0, 1)', () => {
    const dir = policyDir(
      'version: 1\nrouting:\n  default: edge\n  speculative:\n    minDraftConfidence: 1\n',
    );
    const err = errorOf(() => loadPolicyDir(dir, 'pol'));
    expect(err.exitCode).toBe(2);
    expect(err.message).toContain('pol/policy.yaml:5: routing.speculative.minDraftConfidence:');
    const ok = loadPolicyDir(
      policyDir('version: 1\nrouting:\n  default: edge\n  speculative:\n    minDraftConfidence: 0\n'),
    );
    expect(ok.routing.speculative.minDraftConfidence).toBe(0);
  });
});
