import { describe, expect, it } from 'vitest';
import { UserError } from '../../src/foundation/errors.js';
import { parseDuration, parseExpiry } from '../../src/foundation/duration.js';
import {
  FLEET_LOG_PREFIX,
  HEAD_KEY,
  artifactKey,
  blobKey,
  feedbackIndexFrom,
  feedbackIndexKey,
  feedbackKey,
  fleetLogKey,
  parseFeedbackIndexKey,
  parseSeqKey,
  parseTrustRootKey,
  snapshotKey,
  trustRootKey,
} from '../../src/registry/layout.js';
import { parseS3Url } from '../../src/registry/open-store.js';

describe('registry layout', () => {
  it('builds the DESIGN keys', () => {
    expect(blobKey(`sha256:${'ab'.repeat(32)}`)).toBe(`blobs/sha256/${'ab'.repeat(32)}`);
    expect(artifactKey('model', 'draft-small', '1.2.0-rc.1+build.5')).toBe(
      'artifacts/model/draft-small/1.2.0-rc.1+build.5.json',
    );
    expect(trustRootKey(3)).toBe('trust/root/3.json');
    expect(fleetLogKey(42)).toBe('fleet/log/000000000042.json');
    expect(snapshotKey(0)).toBe('fleet/snapshots/000000000000.json');
    expect(HEAD_KEY).toBe('fleet/head.json');
    expect(feedbackKey('edge-par-1', 7)).toBe('feedback/edge-par-1/000000000007.json');
    expect(parseTrustRootKey('trust/root/12.json')).toBe(12);
    expect(parseTrustRootKey('trust/root/012.json')).toBeUndefined();
    expect(parseSeqKey('fleet/log/000000000042.json', FLEET_LOG_PREFIX)).toBe(42);
    expect(parseSeqKey('fleet/log/42.json', FLEET_LOG_PREFIX)).toBeUndefined();
  });

  it('files feedback index markers by time, so one listing after a time finds what is newer', () => {
    const t = new Date('2026-12-06T08:46:41.123Z');
    const key = feedbackIndexKey(t, 'edge-par-1', 7);
    expect(key).toBe('feedback-index/20261206T084641.123Z/edge-par-1/000000000007');
    expect(parseFeedbackIndexKey(key)).toEqual({ time: t, site: 'edge-par-1', seq: 7 });
    expect(feedbackIndexFrom(t) < key).toBe(true);
    expect(feedbackIndexFrom(new Date(t.getTime() + 1)) > key).toBe(true);
    expect(parseFeedbackIndexKey('feedback-index/20261206T084641.123Z/.x/000000000007')).toBeUndefined();
    expect(parseFeedbackIndexKey('feedback-index/20261306T084641.123Z/a/000000000007')).toBeUndefined();
    expect(() => feedbackIndexKey(new Date(Number.NaN), 'a', 1)).toThrow(/invalid feedback index time/);
  });

  it('refuses components that could escape their directory', () => {
    expect(() => blobKey('sha256:../../etc')).toThrow(/not a sha256 digest/);
    expect(() => artifactKey('model', '..', '1.0.0')).toThrow(/invalid name/);
    expect(() => artifactKey('model', 'a/b', '1.0.0')).toThrow(/invalid name/);
    expect(() => feedbackKey('.hidden', 1)).toThrow(/invalid site name/);
    expect(() => fleetLogKey(-1)).toThrow(/invalid fleet log seq/);
    expect(() => trustRootKey(0)).toThrow(/invalid trust root version/);
  });

  it('parses s3 URLs', () => {
    expect(parseS3Url('s3://my-bucket/edgectl/prod/')).toEqual({
      bucket: 'my-bucket',
      prefix: 'edgectl/prod',
    });
    expect(parseS3Url('s3://my-bucket')).toEqual({ bucket: 'my-bucket', prefix: '' });
    expect(() => parseS3Url('s3://My_Bucket/x')).toThrow(UserError);
    expect(() => parseS3Url('s3://bucket/../x')).toThrow(UserError);
  });
});

describe('durations', () => {
  it('parses durations and sums', () => {
    expect(parseDuration('90s')).toBe(90_000);
    expect(parseDuration('12h')).toBe(12 * 3_600_000);
    expect(parseDuration('365d')).toBe(365 * 86_400_000);
    expect(parseDuration('1d12h')).toBe(36 * 3_600_000);
    expect(parseDuration('250ms')).toBe(250);
  });

  it('refuses typos instead of reading them as zero', () => {
    for (const bad of ['', '10', '5 days', 'd', '1y', '0s', '-1d', '1d 2h']) {
      expect(() => parseDuration(bad, '--expires')).toThrow(UserError);
    }
    expect(() => parseDuration('1y', '--expires')).toThrow(/invalid --expires "1y"/);
  });

  it('expiry is a duration from now or a future ISO time', () => {
    const now = new Date('2026-01-01T00:00:00Z');
    expect(parseExpiry('30d', now).toISOString()).toBe('2026-01-31T00:00:00.000Z');
    expect(parseExpiry('2027-06-01T00:00:00Z', now).toISOString()).toBe('2027-06-01T00:00:00.000Z');
    expect(() => parseExpiry('2025-06-01', now)).toThrow(/in the past/);
  });
});
