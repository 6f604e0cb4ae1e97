/**
 * Feedback reports (docs/rollouts.md, docs/formats.md "Feedback reports"): what a site tells the rollout controller about
 * one window of traffic under one set of active refs. Owns the report type and its zod schema, the
 * fixed latency histogram buckets, merging (so windows and sites add up by summing), and signing
 * and verifying reports with site keys. The accumulator that builds windows is accumulator.ts; the
 * spool that ships them is spool.ts.
 *
 * A report carries the counts the rollout judge's tests need: requests by route, draft and accepted
 * tokens (acceptance rate, a binomial), verify rounds, errors, policy blocks, redactions,
 * escalations and fallbacks (rates), and TTFT / end-to-end latency histograms whose bucket bounds
 * are fixed here and checked by the schema, so any two histograms merge by adding counts.
 *
 * Only a declared site key counts (docs/operations.md "Key rotation"): `verifyReport` looks up the key declared for the
 * report's site, so a report signed by another site's key, or claiming another site, is rejected.
 */
import { z } from 'zod';
import { VerificationError } from '../foundation/errors.js';
import {
  PayloadType,
  parseEnvelope,
  peekPayload,
  signEnvelope,
  verifyEnvelope,
  type Envelope,
} from '../registry/envelope.js';
import { decodeBase64, keyIdOf, type KeyPair } from '../registry/keys.js';
import type { FleetState } from '../fleet/state.js';

export const FEEDBACK_REPORT_VERSION = 1;

/**
 * Upper bounds (ms, inclusive) of the latency buckets; one more bucket holds everything above the
 * last bound. Roughly logarithmic from 5 ms to 2 min, fine enough for p50/p95 judgements of TTFT
 * (tens to hundreds of ms) and end-to-end time (seconds). Changing them breaks merging with older
 * reports: add a new report version instead.
 */
export const LATENCY_BOUNDS_MS: readonly number[] = Object.freeze([
  5, 10, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000, 7500, 10000, 15000,
  30000, 60000, 120000,
]);

const count = z.number().int().nonnegative();
const SITE_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export const histogramSchema = z
  .strictObject({
    /** Always LATENCY_BOUNDS_MS (checked), so histograms merge by adding counts. */
    bounds: z.array(z.number()),
    /** counts[i]: samples <= bounds[i] and > bounds[i-1]; the last entry counts samples above every bound. */
    counts: z.array(count),
    /** Sum of the samples in ms (for the mean). */
    sum: z.number().nonnegative(),
    count,
  })
  .refine(
    (h) =>
      h.bounds.length === LATENCY_BOUNDS_MS.length && h.bounds.every((b, i) => b === LATENCY_BOUNDS_MS[i]),
    {
      message: 'bounds must be the fixed LATENCY_BOUNDS_MS',
      path: ['bounds'],
    },
  )
  .refine((h) => h.counts.length === LATENCY_BOUNDS_MS.length + 1, {
    message: `counts must have ${LATENCY_BOUNDS_MS.length + 1} entries`,
    path: ['counts'],
  })
  .refine((h) => h.counts.reduce((a, b) => a + b, 0) === h.count, {
    message: 'count must equal the sum of counts',
    path: ['count'],
  });
export type LatencyHistogram = z.infer<typeof histogramSchema>;

const refSchema = z.strictObject({
  ref: z.string().min(1),
  manifestDigest: z.string().regex(/^sha256:[0-9a-f]{64}$/),
});

/** The artifacts active at the site while the window's requests were served. */
export const refsSchema = z.strictObject({
  model: refSchema.optional(),
  adapters: z.array(refSchema),
  policy: refSchema.optional(),
  /** Shadow adapters (a rollout's shadow step) the site ran beside the served ones; absent when none. */
  shadow: z.array(refSchema).optional(),
  /** Index artifacts (retrieval) the site served from; absent when none (older reports). */
  indexes: z.array(refSchema).optional(),
});
export type FeedbackRefs = z.infer<typeof refsSchema>;

export const countersSchema = z.strictObject({
  /** Requests answered or failed, by the route that served them (blocked requests excluded). */
  requests: z.strictObject({ edge: count, speculative: count, cloud: count }),
  /** Draft tokens proposed to the verifier, and how many it accepted. */
  draftTokens: count,
  acceptedTokens: count,
  verifyRounds: count,
  /** Tokens returned to users. */
  outputTokens: count,
  /** Requests that failed (any route, including 503s when the verifier was unavailable). */
  errors: count,
  /** Requests refused by a block rule (not counted in `requests`). */
  policyBlocks: count,
  /** PII values redacted. */
  redactions: count,
  /** Requests moved to the cloud by an abstain threshold. */
  escalations: count,
  /** Requests answered edge-unverified because the verifier was unavailable. */
  fallbacks: count,
});
export type FeedbackCounters = z.infer<typeof countersSchema>;

export const latencySchema = z.strictObject({ ttftMs: histogramSchema, e2eMs: histogramSchema });
export type FeedbackLatency = z.infer<typeof latencySchema>;

/**
 * One shadow adapter's runs in a window: each a speculative decode of a served request's
 * (redacted) prompt with the shadow adapter against the verifier, its output discarded.
 */
export const shadowCountersSchema = z
  .strictObject({
    ref: z.string().min(1),
    manifestDigest: z.string().regex(/^sha256:[0-9a-f]{64}$/),
    runs: count,
    draftTokens: count,
    acceptedTokens: count,
    verifyRounds: count,
    /** Runs that failed (verifier unreachable, ...); they count nothing else. */
    errors: count,
  })
  .refine((s) => s.acceptedTokens <= s.draftTokens, {
    message: 'more accepted than drafted tokens',
    path: ['acceptedTokens'],
  });
export type ShadowCounters = z.infer<typeof shadowCountersSchema>;

/**
 * Retrieval in a window (RAG requests, src/runtime/engine/retrieval.ts): how many requests
 * retrieved, how many got at least one passage (hits), passages attached, requests served past the
 * index's staleness budget (stale) or refused retrieval for it (refused), passages withheld because
 * they match a policy block rule (withheld; absent when none was), and the retrieval latency.
 * Optional in a window, so reports of sites without indexes (and older ones) stay valid.
 */
export const retrievalCountersSchema = z
  .strictObject({
    requests: count,
    hits: count,
    passages: count,
    stale: count,
    refused: count,
    withheld: count.optional(),
    latencyMs: histogramSchema,
  })
  .refine((r) => r.hits <= r.requests, { message: 'more hits than retrieval requests', path: ['hits'] });
export type RetrievalCounters = z.infer<typeof retrievalCountersSchema>;

const windowShape = z.strictObject({
  /** The fleet log seq the site had applied when the segment was recorded. */
  fleetSeq: z.number().int().nonnegative(),
  windowStart: z.iso.datetime(),
  windowEnd: z.iso.datetime(),
  refs: refsSchema,
  counters: countersSchema,
  latency: latencySchema,
  /** Shadow runs in the window, per shadow adapter (optional: absent when the site ran none). */
  shadow: z.array(shadowCountersSchema).optional(),
  /** Retrieval in the window (optional: absent when no request retrieved). */
  retrieval: retrievalCountersSchema.optional(),
});

function checkWindow(w: z.infer<typeof windowShape>, ctx: z.RefinementCtx): void {
  if (Date.parse(w.windowStart) > Date.parse(w.windowEnd)) {
    ctx.addIssue({ code: 'custom', message: 'windowStart is after windowEnd', path: ['windowEnd'] });
  }
  if (w.counters.acceptedTokens > w.counters.draftTokens) {
    ctx.addIssue({
      code: 'custom',
      message: 'more accepted than drafted tokens',
      path: ['counters', 'acceptedTokens'],
    });
  }
}

/** One closed window segment, before it gets a site and a seq. */
export const windowSchema = windowShape.superRefine(checkWindow);
export type FeedbackWindow = z.infer<typeof windowShape>;

export const reportSchema = windowShape
  .extend({
    version: z.literal(FEEDBACK_REPORT_VERSION),
    site: z.string().regex(SITE_RE),
    /** Per-site report number, from 1, never reused; the registry key is feedback/<site>/<seq:012d>.json. */
    seq: z.number().int().min(1).max(999_999_999_999),
  })
  .superRefine(checkWindow);
export type FeedbackReport = z.infer<typeof reportSchema>;

// ---------------------------------------------------------------------------------------------

export function emptyHistogram(): LatencyHistogram {
  return {
    bounds: [...LATENCY_BOUNDS_MS],
    counts: new Array<number>(LATENCY_BOUNDS_MS.length + 1).fill(0),
    sum: 0,
    count: 0,
  };
}

export function observe(h: LatencyHistogram, ms: number): void {
  if (!Number.isFinite(ms) || ms < 0) return;
  let i = 0;
  while (i < LATENCY_BOUNDS_MS.length && ms > LATENCY_BOUNDS_MS[i]!) i++;
  h.counts[i] = (h.counts[i] ?? 0) + 1;
  h.sum += ms;
  h.count++;
}

export function mergeHistograms(a: LatencyHistogram, b: LatencyHistogram): LatencyHistogram {
  return {
    bounds: [...LATENCY_BOUNDS_MS],
    counts: a.counts.map((c, i) => c + (b.counts[i] ?? 0)),
    sum: a.sum + b.sum,
    count: a.count + b.count,
  };
}

/**
 * Upper bound of the bucket holding the q-quantile (a conservative estimate: the true quantile is
 * at most this); Infinity when it falls above the last bound, undefined for an empty histogram.
 */
export function histogramQuantile(h: LatencyHistogram, q: number): number | undefined {
  if (h.count === 0) return undefined;
  const rank = Math.max(1, Math.ceil(q * h.count));
  let seen = 0;
  for (let i = 0; i < h.counts.length; i++) {
    seen += h.counts[i] ?? 0;
    if (seen >= rank) return LATENCY_BOUNDS_MS[i] ?? Infinity;
  }
  return Infinity;
}

export function emptyCounters(): FeedbackCounters {
  return {
    requests: { edge: 0, speculative: 0, cloud: 0 },
    draftTokens: 0,
    acceptedTokens: 0,
    verifyRounds: 0,
    outputTokens: 0,
    errors: 0,
    policyBlocks: 0,
    redactions: 0,
    escalations: 0,
    fallbacks: 0,
  };
}

export function mergeCounters(a: FeedbackCounters, b: FeedbackCounters): FeedbackCounters {
  return {
    requests: {
      edge: a.requests.edge + b.requests.edge,
      speculative: a.requests.speculative + b.requests.speculative,
      cloud: a.requests.cloud + b.requests.cloud,
    },
    draftTokens: a.draftTokens + b.draftTokens,
    acceptedTokens: a.acceptedTokens + b.acceptedTokens,
    verifyRounds: a.verifyRounds + b.verifyRounds,
    outputTokens: a.outputTokens + b.outputTokens,
    errors: a.errors + b.errors,
    policyBlocks: a.policyBlocks + b.policyBlocks,
    redactions: a.redactions + b.redactions,
    escalations: a.escalations + b.escalations,
    fallbacks: a.fallbacks + b.fallbacks,
  };
}

/** Sum of counters and latency over windows or reports (sites and windows merge the same way). */
export function sumWindows(
  windows: readonly Pick<FeedbackWindow, 'counters' | 'latency'>[],
): Pick<FeedbackWindow, 'counters' | 'latency'> {
  let counters = emptyCounters();
  let ttft = emptyHistogram();
  let e2e = emptyHistogram();
  for (const w of windows) {
    counters = mergeCounters(counters, w.counters);
    ttft = mergeHistograms(ttft, w.latency.ttftMs);
    e2e = mergeHistograms(e2e, w.latency.e2eMs);
  }
  return { counters, latency: { ttftMs: ttft, e2eMs: e2e } };
}

/** Every request a window saw: routed ones plus the ones a block rule refused. */
export function totalRequests(c: FeedbackCounters): number {
  return c.requests.edge + c.requests.speculative + c.requests.cloud + c.policyBlocks;
}

/** accepted / drafted tokens; undefined when nothing was drafted. */
export function acceptanceRate(c: FeedbackCounters): number | undefined {
  return c.draftTokens > 0 ? c.acceptedTokens / c.draftTokens : undefined;
}

// ---------------------------------------------------------------------------------------------

/** Public keys declared per site name (the `publicKey` of each site declaration). */
export type DeclaredSiteKeys = Readonly<Record<string, { keyid: string; key: string }>>;

export function declaredSiteKeys(state: FleetState): DeclaredSiteKeys {
  const out: Record<string, { keyid: string; key: string }> = {};
  for (const [name, site] of Object.entries(state.sites)) out[name] = site.declaration.publicKey;
  return out;
}

/** Signs a report with the site's key; throws TypeError for a report that breaks the schema (a bug). */
export function signReport(report: FeedbackReport, siteKey: KeyPair): Envelope {
  const parsed = reportSchema.safeParse(report);
  if (!parsed.success) throw new TypeError(`invalid feedback report: ${z.prettifyError(parsed.error)}`);
  return signEnvelope(PayloadType.feedback, report, [siteKey]);
}

function rejected(
  what: string,
  why: string,
  code: string,
  details: Record<string, unknown> = {},
): VerificationError {
  return new VerificationError(`${what}: ${why}`, {
    code,
    suggestion: 'only reports signed by the key declared in sites/<name>.yaml count; this one is ignored',
    details: { object: what, ...details },
  });
}

export interface VerifyReportOptions {
  /** Names the object in errors (a registry key or spool path). */
  what?: string;
  /** The site and seq the report must claim (from the registry key it was read from). */
  expectSite?: string;
  expectSeq?: number;
}

/**
 * Verifies a feedback envelope against the key declared for the site it claims and returns the
 * report. VerificationError (exit 4) when: the envelope is malformed or of another type, the site
 * is not declared, the signature is not by that site's declared key, the payload breaks the schema,
 * or the site/seq differ from what the registry key says.
 */
export function verifyReport(
  envelope: unknown,
  declared: DeclaredSiteKeys,
  opts: VerifyReportOptions = {},
): FeedbackReport {
  const what = opts.what ?? 'feedback report';
  const env = parseEnvelope(envelope, what);
  const claimed = peekPayload(env, what) as { site?: unknown } | null;
  const site = typeof claimed?.site === 'string' ? claimed.site : undefined;
  if (site === undefined) throw rejected(what, 'the payload names no site', 'E_FEEDBACK_MALFORMED');
  const declaredKey = Object.hasOwn(declared, site) ? declared[site] : undefined;
  if (!declaredKey) {
    throw rejected(
      what,
      `site "${site}" is not declared, so no key may sign its feedback`,
      'E_FEEDBACK_SITE',
      { site },
    );
  }
  const keyBytes = decodeBase64(declaredKey.key);
  if (!keyBytes || keyBytes.length !== 32) {
    throw rejected(
      what,
      `the declared key of site "${site}" is not an Ed25519 public key`,
      'E_FEEDBACK_SITE',
    );
  }
  const keyid = keyIdOf(keyBytes);
  const payload = verifyEnvelope<unknown>(
    env,
    PayloadType.feedback,
    { keyids: [keyid], threshold: 1 },
    { [keyid]: keyBytes },
    what,
  );
  const parsed = reportSchema.safeParse(payload);
  if (!parsed.success) {
    throw rejected(
      what,
      `invalid report: ${z.prettifyError(parsed.error).replace(/\n/g, '; ')}`,
      'E_FEEDBACK_MALFORMED',
    );
  }
  const report = parsed.data;
  if (opts.expectSite !== undefined && report.site !== opts.expectSite) {
    throw rejected(
      what,
      `the report is for site "${report.site}", not "${opts.expectSite}"`,
      'E_FEEDBACK_MISPLACED',
    );
  }
  if (opts.expectSeq !== undefined && report.seq !== opts.expectSeq) {
    throw rejected(what, `the report has seq ${report.seq}, not ${opts.expectSeq}`, 'E_FEEDBACK_MISPLACED');
  }
  return report;
}
