/**
 * Shared pieces of the feedback tests: contexts, seeded request outcomes (with their expected
 * totals), and a store wrapper that can be switched offline to simulate an unreachable registry.
 */
import { OperationalError } from '../../src/foundation/errors.js';
import type { FeedbackContext, RequestOutcome } from '../../src/feedback/accumulator.js';
import type { GetOptions, ListOptions, RangeOptions, Store } from '../../src/registry/store.js';
import { mulberry32 } from '../policy/pii-fixtures.js';

const digest = (c: string) => `sha256:${c.repeat(64)}`;

export function context(fleetSeq: number, modelVersion = '1.0.0', adapters: string[] = []): FeedbackContext {
  return {
    fleetSeq,
    refs: {
      model: {
        ref: `model/draft@${modelVersion}`,
        manifestDigest: digest(modelVersion === '1.0.0' ? 'a' : 'b'),
      },
      adapters: adapters.map((a, i) => ({
        ref: `adapter/${a}@1.0.0`,
        manifestDigest: digest(String(i + 1)),
      })),
      policy: { ref: 'policy/default@1.0.0', manifestDigest: digest('c') },
    },
  };
}

export interface Expected {
  requests: number;
  edge: number;
  speculative: number;
  cloud: number;
  blocked: number;
  draftTokens: number;
  acceptedTokens: number;
  errors: number;
  ttftSamples: number;
}

export function emptyExpected(): Expected {
  return {
    requests: 0,
    edge: 0,
    speculative: 0,
    cloud: 0,
    blocked: 0,
    draftTokens: 0,
    acceptedTokens: 0,
    errors: 0,
    ttftSamples: 0,
  };
}

/** `n` varied outcomes from `seed`, and what they should add up to. */
export function outcomes(seed: number, n: number): { list: RequestOutcome[]; expected: Expected } {
  const rng = mulberry32(seed);
  const list: RequestOutcome[] = [];
  const e = emptyExpected();
  for (let i = 0; i < n; i++) {
    const r = rng();
    e.requests++;
    if (r < 0.05) {
      list.push({ route: 'blocked', redactions: 1 });
      e.blocked++;
      continue;
    }
    const route = r < 0.3 ? 'edge' : r < 0.85 ? 'speculative' : 'cloud';
    e[route]++;
    const error = rng() < 0.03;
    const draftTokens = route === 'speculative' ? 8 + Math.floor(rng() * 40) : 0;
    const acceptedTokens = Math.floor(draftTokens * rng());
    const o: RequestOutcome = {
      route,
      error,
      draftTokens,
      acceptedTokens,
      verifyRounds: route === 'speculative' ? Math.ceil(draftTokens / 4) : 0,
      outputTokens: 20 + Math.floor(rng() * 100),
      e2eMs: 100 + rng() * 3000,
    };
    if (!error) {
      o.ttftMs = 5 + rng() * 400;
      e.ttftSamples++;
    }
    if (error) e.errors++;
    e.draftTokens += draftTokens;
    e.acceptedTokens += acceptedTokens;
    list.push(o);
  }
  return { list, expected: e };
}

export function addExpected(a: Expected, b: Expected): Expected {
  const out = { ...a };
  for (const k of Object.keys(b) as (keyof Expected)[]) out[k] += b[k];
  return out;
}

/** A store whose writes and reads fail with a network-style error while `offline` is true. */
export class FlakyStore implements Store {
  offline = false;
  failures = 0;
  /** Key prefixes whose writes are refused as access denied (credentials scoped narrower). */
  deniedPrefixes: string[] = [];
  constructor(private readonly inner: Store) {}
  get url() {
    return this.inner.url;
  }
  get enforcesConditionalWrites() {
    return this.inner.enforcesConditionalWrites;
  }
  get stats() {
    return this.inner.stats;
  }
  get limits() {
    return this.inner.limits;
  }
  resetStats() {
    this.inner.resetStats();
  }
  private check(op: string): void {
    if (this.offline) {
      this.failures++;
      throw new OperationalError(`registry unreachable (${op}): connect ECONNREFUSED 127.0.0.1:9`);
    }
  }
  async get(key: string, opts?: GetOptions) {
    this.check('get');
    return this.inner.get(key, opts);
  }
  async getIfChanged(key: string, etag: string | undefined, opts?: GetOptions) {
    this.check('get');
    return this.inner.getIfChanged(key, etag, opts);
  }
  async getRange(key: string, start: number, end: number, opts?: RangeOptions) {
    this.check('get');
    return this.inner.getRange(key, start, end, opts);
  }
  async head(key: string) {
    this.check('head');
    return this.inner.head(key);
  }
  async list(prefix: string, opts?: ListOptions) {
    this.check('list');
    return this.inner.list(prefix, opts);
  }
  async putIfAbsent(key: string, body: Buffer) {
    this.check('put');
    if (this.deniedPrefixes.some((p) => key.startsWith(p))) {
      throw new OperationalError(`access to bucket test denied for put ${key} (AccessDenied)`, {
        code: 'E_ACCESS_DENIED',
      });
    }
    return this.inner.putIfAbsent(key, body);
  }
  async compareAndSwap(key: string, body: Buffer, etag: string | undefined) {
    this.check('put');
    return this.inner.compareAndSwap(key, body, etag);
  }
  async delete(key: string) {
    this.check('delete');
    return this.inner.delete(key);
  }
  close() {
    return this.inner.close();
  }
}
