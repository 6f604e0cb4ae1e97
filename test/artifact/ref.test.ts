import { describe, expect, it } from 'vitest';
import { ExitCode, UserError } from '../../src/foundation/errors.js';
import { formatRef, parseListSelector, parseRef } from '../../src/artifact/ref.js';

function fails(f: () => unknown, pattern: RegExp): void {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).exitCode).toBe(ExitCode.Usage);
    expect((err as Error).message).toMatch(pattern);
    return;
  }
  throw new Error('expected a UserError');
}

describe('artifact refs', () => {
  it('parses and formats version and digest refs', () => {
    expect(parseRef('model/draft@1.2.0')).toEqual({ kind: 'model', name: 'draft', version: '1.2.0' });
    expect(parseRef('adapter/support@2.0.0-rc.1').version).toBe('2.0.0-rc.1');
    const digest = `sha256:${'ab'.repeat(32)}`;
    expect(parseRef(`policy/default@${digest}`)).toEqual({ kind: 'policy', name: 'default', digest });
    expect(formatRef(parseRef(`policy/default@${digest}`))).toBe(`policy/default@${digest}`);
    expect(formatRef({ kind: 'model', name: 'm', version: '1.0.0' })).toBe('model/m@1.0.0');
  });

  it('rejects invalid semver with exit 2, naming the problem', () => {
    fails(() => parseRef('model/draft@1.0'), /"1\.0" is not a semantic version/);
    fails(() => parseRef('model/draft@v1.0.0'), /not a semantic version/);
    fails(() => parseRef('model/draft@1.0.0+build.5'), /build metadata/);
    fails(() => parseRef('model/draft@'), /empty version/);
  });

  it('rejects unknown kinds, bad names, bad digests and missing parts', () => {
    fails(() => parseRef('dataset/x@1.0.0'), /unknown artifact kind "dataset"/);
    fails(() => parseRef('model/Draft@1.0.0'), /invalid artifact name "Draft"/);
    fails(() => parseRef('model/../x@1.0.0'), /invalid artifact name/);
    fails(() => parseRef('model/draft@sha256:abc'), /64 lower-case hex/);
    fails(() => parseRef('model/draft'), /missing "@<version>"/);
    fails(() => parseRef('draft@1.0.0'), /missing "<kind>\/" prefix/);
  });

  it('parses list selectors', () => {
    expect(parseListSelector('model')).toEqual({ kind: 'model' });
    expect(parseListSelector('model/draft')).toEqual({ kind: 'model', name: 'draft' });
    fails(() => parseListSelector('weights'), /unknown artifact kind/);
  });
});
