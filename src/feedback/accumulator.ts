/**
 * The feedback accumulator: folds request outcomes into window segments, one per active context
 * (the applied fleet seq and the active model/adapter/policy refs). Pure and synchronous (time is
 * passed in), so the runtime calls `record` on its hot path and tests drive it without clocks.
 *
 * A window runs from one `closeWindow` to the next. Within it, a change of context (`setContext`,
 * called when the site switches generation) ends the current segment and starts another, so a
 * canary's numbers never mix with its baseline's. An outcome may name the context that served it
 * (a request that started before a switch and finished after): it then counts in that context's
 * latest segment of the window, or in a new one when the window has none. `closeWindow` returns
 * every segment that saw at least one request (or shadow run) and opens the next window.
 *
 * Shadow runs (a rollout's shadow step: the candidate adapter drafts a served request's prompt
 * after the response, its output discarded) are recorded with `recordShadow` in the same segment
 * scheme, per shadow ref, and close with the window as its optional `shadow` field. Retrieval
 * (RAG) counts ride on the outcome and close as the optional `retrieval` field.
 */
import { canonicalJson } from '../foundation/canonical-json.js';
import type { Route } from '../policy/schema.js';
import {
  emptyCounters,
  emptyHistogram,
  observe,
  type FeedbackCounters,
  type FeedbackLatency,
  type FeedbackRefs,
  type FeedbackWindow,
  type RetrievalCounters,
  type ShadowCounters,
} from './report.js';

export interface FeedbackContext {
  fleetSeq: number;
  refs: FeedbackRefs;
}

/** What the runtime knows about one finished request. */
export interface RequestOutcome {
  /** The route that served it, or `blocked` when a block rule refused it. */
  route: Route | 'blocked';
  /** The request failed (error response, including a 503 for an unavailable verifier). */
  error?: boolean;
  /** An abstain threshold moved it to the cloud. */
  escalated?: boolean;
  /** Answered edge-unverified because the verifier was unavailable. */
  fallback?: boolean;
  draftTokens?: number;
  acceptedTokens?: number;
  verifyRounds?: number;
  outputTokens?: number;
  /** PII values redacted from its prompt. */
  redactions?: number;
  ttftMs?: number;
  e2eMs?: number;
  /** The context that served it, when it may differ from the current one. */
  context?: FeedbackContext;
  /** Retrieval the request did (RAG), when it did. */
  retrieval?: RetrievalOutcome;
}

/** One request's retrieval step (src/runtime/engine/retrieval.ts). */
export interface RetrievalOutcome {
  ms: number;
  passages: number;
  /** Served although the index is older than the policy's staleness budget. */
  stale?: boolean;
  /** Retrieval refused: the index is past the budget and the policy says refuse. */
  refused?: boolean;
  /** Passages withheld because they match a policy block rule, per rule (absent: none). */
  withheld?: readonly { rule: string; passages: number }[];
}

/** One finished shadow run (see the module comment). */
export interface ShadowOutcome {
  ref: string;
  manifestDigest: string;
  draftTokens: number;
  acceptedTokens: number;
  verifyRounds: number;
  /** The run failed; nothing else of it counts. */
  error?: boolean;
}

interface Segment {
  key: string;
  context: FeedbackContext;
  start: number;
  end: number | undefined;
  counters: FeedbackCounters;
  latency: FeedbackLatency;
  events: number;
  shadow: Map<string, ShadowCounters>;
  retrieval: RetrievalCounters | undefined;
}

function recordRetrieval(seg: Segment, r: RetrievalOutcome): void {
  const t = (seg.retrieval ??= {
    requests: 0,
    hits: 0,
    passages: 0,
    stale: 0,
    refused: 0,
    latencyMs: emptyHistogram(),
  });
  t.requests++;
  const n = nonNegativeInt(r.passages);
  if (n > 0) t.hits++;
  t.passages += n;
  if (r.stale) t.stale++;
  if (r.refused) t.refused++;
  // Only present once a passage was withheld, so windows of sites without such rules stay as before.
  for (const w of r.withheld ?? []) t.withheld = (t.withheld ?? 0) + nonNegativeInt(w.passages);
  observe(t.latencyMs, r.ms);
}

function contextKey(ctx: FeedbackContext): string {
  const adapters = [...ctx.refs.adapters].sort((a, b) => (a.ref < b.ref ? -1 : a.ref > b.ref ? 1 : 0));
  return canonicalJson({ fleetSeq: ctx.fleetSeq, refs: { ...ctx.refs, adapters } });
}

function cloneContext(ctx: FeedbackContext): FeedbackContext {
  return structuredClone(ctx);
}

function nonNegativeInt(v: number | undefined): number {
  return v !== undefined && Number.isFinite(v) && v > 0 ? Math.floor(v) : 0;
}

export class FeedbackAccumulator {
  private segments: Segment[] = [];
  private current: Segment;

  constructor(context: FeedbackContext, startMs: number) {
    this.current = this.newSegment(context, startMs);
  }

  get context(): FeedbackContext {
    return cloneContext(this.current.context);
  }

  /** Requests recorded in the open window (routed plus blocked). */
  get pendingRequests(): number {
    return this.segments.reduce((a, s) => a + s.events, 0);
  }

  /** The site now serves `context` (from `atMs`); a different one starts a new segment. */
  setContext(context: FeedbackContext, atMs: number): void {
    const key = contextKey(context);
    if (key === this.current.key) return;
    this.current.end = atMs;
    this.current = this.newSegment(context, atMs);
  }

  record(outcome: RequestOutcome): void {
    const seg = outcome.context ? this.segmentFor(outcome.context) : this.current;
    const c = seg.counters;
    seg.events++;
    if (outcome.retrieval) recordRetrieval(seg, outcome.retrieval);
    if (outcome.route === 'blocked') {
      c.policyBlocks++;
      c.redactions += nonNegativeInt(outcome.redactions);
      return;
    }
    c.requests[outcome.route]++;
    const drafted = nonNegativeInt(outcome.draftTokens);
    c.draftTokens += drafted;
    c.acceptedTokens += Math.min(drafted, nonNegativeInt(outcome.acceptedTokens));
    c.verifyRounds += nonNegativeInt(outcome.verifyRounds);
    c.outputTokens += nonNegativeInt(outcome.outputTokens);
    c.redactions += nonNegativeInt(outcome.redactions);
    if (outcome.error) c.errors++;
    if (outcome.escalated) c.escalations++;
    if (outcome.fallback) c.fallbacks++;
    if (outcome.ttftMs !== undefined) observe(seg.latency.ttftMs, outcome.ttftMs);
    if (outcome.e2eMs !== undefined) observe(seg.latency.e2eMs, outcome.e2eMs);
  }

  /** Adds one shadow run to the segment of `context` (default: the current one). */
  recordShadow(outcome: ShadowOutcome, context?: FeedbackContext): void {
    const seg = context ? this.segmentFor(context) : this.current;
    const key = `${outcome.ref}\u0000${outcome.manifestDigest}`;
    let s = seg.shadow.get(key);
    if (!s) {
      s = {
        ref: outcome.ref,
        manifestDigest: outcome.manifestDigest,
        runs: 0,
        draftTokens: 0,
        acceptedTokens: 0,
        verifyRounds: 0,
        errors: 0,
      };
      seg.shadow.set(key, s);
    }
    s.runs++;
    if (outcome.error) {
      s.errors++;
      return;
    }
    const drafted = nonNegativeInt(outcome.draftTokens);
    s.draftTokens += drafted;
    s.acceptedTokens += Math.min(drafted, nonNegativeInt(outcome.acceptedTokens));
    s.verifyRounds += nonNegativeInt(outcome.verifyRounds);
  }

  /**
   * Ends the window at `atMs`: returns its segments that saw requests or shadow runs (in the
   * order they started) and opens a new window in the current context.
   */
  closeWindow(atMs: number): FeedbackWindow[] {
    this.current.end = atMs;
    const closed = this.segments
      .filter((s) => s.events > 0 || s.shadow.size > 0)
      .map((s) => ({
        fleetSeq: s.context.fleetSeq,
        windowStart: new Date(s.start).toISOString(),
        windowEnd: new Date(Math.max(s.start, s.end ?? atMs)).toISOString(),
        refs: cloneContext(s.context).refs,
        counters: s.counters,
        latency: s.latency,
        ...(s.shadow.size > 0
          ? { shadow: [...s.shadow.values()].sort((a, b) => (a.ref < b.ref ? -1 : a.ref > b.ref ? 1 : 0)) }
          : {}),
        ...(s.retrieval ? { retrieval: s.retrieval } : {}),
      }));
    const context = this.current.context;
    this.segments = [];
    this.current = this.newSegment(context, atMs);
    return closed;
  }

  private segmentFor(context: FeedbackContext): Segment {
    const key = contextKey(context);
    if (key === this.current.key) return this.current;
    for (let i = this.segments.length - 1; i >= 0; i--)
      if (this.segments[i]!.key === key) return this.segments[i]!;
    // A context this window has not seen: a segment of its own, spanning the window so far.
    const seg: Segment = {
      ...this.blank(context, this.segments[0]?.start ?? this.current.start),
      end: this.current.start,
    };
    this.segments.splice(this.segments.length - 1, 0, seg);
    return seg;
  }

  private newSegment(context: FeedbackContext, startMs: number): Segment {
    const seg = this.blank(context, startMs);
    this.segments.push(seg);
    return seg;
  }

  private blank(context: FeedbackContext, startMs: number): Segment {
    return {
      key: contextKey(context),
      context: cloneContext(context),
      start: startMs,
      end: undefined,
      counters: emptyCounters(),
      latency: { ttftMs: emptyHistogram(), e2eMs: emptyHistogram() },
      events: 0,
      shadow: new Map(),
      retrieval: undefined,
    };
  }
}
