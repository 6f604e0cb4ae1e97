/**
 * The seam between the site runtime's request path (`src/runtime/engine/`: the site engine and its
 * route executor; `src/runtime/serve/`: loading a generation, the OpenAI-compatible server) and the site daemon
 * that composes it with the sync loop, hot swap and feedback (`src/runtime/daemon/`). Types only,
 * so both halves compile against the same shapes.
 *
 * The daemon owns *which* generation serves: it loads each new generation with `loadGeneration`
 * (passing the previous one so an unchanged model session is reused and only adapters or the
 * policy are reloaded), hands out references through a `GenerationSource`, and disposes an old
 * generation once its last in-flight request releases it. The server acquires one generation per
 * request and releases it when the response ends, so a swap never touches a running request.
 */
import type { Registry } from 'prom-client';
import type { FeedbackContext, RequestOutcome, ShadowOutcome } from '../feedback/accumulator.js';
import type { SiteCloud } from '../fleet/site-schema.js';
import type { BreakerState } from '../policy/circuit-breaker.js';
import type { Route } from '../policy/schema.js';

/** What every loaded generation exposes to the daemon (the serve half extends it). */
export interface ServedGeneration {
  /** The generation id (its directory name under `generations/`). */
  readonly id: string;
  /** The applied fleet seq and active refs: the feedback context of requests it serves. */
  readonly context: FeedbackContext;
  /** Model name clients use in `model` (`<model>` or `<model>:<adapter>`), and adapter names. */
  readonly modelName: string;
  readonly adapterNames: readonly string[];
  /** Frees sessions and buffers; called by the daemon after the last release. */
  dispose(): Promise<void>;
}

/** A counted reference: the server calls `release` exactly once when the response has ended. */
export interface GenerationLease<G extends ServedGeneration = ServedGeneration> {
  readonly generation: G;
  release(): void;
}

export interface GenerationSource<G extends ServedGeneration = ServedGeneration> {
  /** The generation new requests use, or undefined while none is installed (the server answers 503). */
  acquire(): GenerationLease<G> | undefined;
}

/** Request-path counters the server reports in `/v1/status` (the daemon adds sync and feedback). */
export interface RuntimeRequestStatus {
  inFlight: number;
  queued: number;
  requests: Record<Route, number> & { blocked: number; errors: number; rejected: number };
  /** Acceptance over recent speculative rounds (accepted / drafted), null before any. */
  acceptance: number | null;
  ttftP95Ms: number | null;
  e2eP95Ms: number | null;
  verifier: { url: string | null; breaker: BreakerState; lastError: string | null };
}

export interface DaemonSyncStatus {
  state: 'starting' | 'ok' | 'syncing' | 'offline' | 'refused' | 'error';
  appliedSeq: number | null;
  lastSyncAt: string | null;
  lastError: string | null;
}

export interface DaemonFeedbackStatus {
  spooled: number;
  uploaded: number;
  lastUploadAt: string | null;
  lastError: string | null;
}

/** The full `GET /v1/status` body of a running site daemon. */
export interface SiteRuntimeStatus {
  site: string;
  pid: number;
  startedAt: string;
  url: string;
  dataDir: string;
  registry: string;
  generation: { id: string; context: FeedbackContext } | null;
  sync: DaemonSyncStatus;
  feedback: DaemonFeedbackStatus;
  runtime: RuntimeRequestStatus;
  /** Hot swap (daemon): swaps so far, replaced generations still finishing requests, a load that failed. */
  swap?: {
    swaps: number;
    draining: { id: string; leases: number }[];
    lastFailure: { id: string; error: string } | null;
  };
}

export interface RuntimeServerOptions<G extends ServedGeneration = ServedGeneration> {
  host: string;
  port: number;
  /** Required (the server refuses to start without it) when `host` is not a loopback address. */
  bearerToken?: string;
  generations: GenerationSource<G>;
  /** The verifier base URL from the site's declaration (may change with the fleet state). */
  verifierUrl: () => string | undefined;
  /** Bearer token the verifier requires, sent with every verifier request and stream. */
  verifierToken?: string;
  /** The declaration's `runtime.cloud`: an OpenAI-compatible server for the cloud route (else the verifier). */
  cloud?: () => SiteCloud | undefined;
  /** Slow-client deadlines (src/http/http.ts): a whole request, and its headers. */
  requestTimeoutMs?: number;
  headersTimeoutMs?: number;
  /** Generations admitted at once, and requests that may wait before a 429 with Retry-After. */
  maxConcurrent: number;
  maxQueue: number;
  /** Every finished request (served, failed or blocked), with the context of the generation that served it. */
  onOutcome: (outcome: RequestOutcome, context: FeedbackContext) => void;
  /**
   * Rollout shadow steps: the share of served requests (0..1, default 0.2) whose adapter has a
   * shadow adapter of the same name that are re-run with it after the response, and where each
   * run is reported (`onShadow`; without it no shadow runs).
   */
  shadowSample?: number;
  onShadow?: (outcome: ShadowOutcome, context: FeedbackContext) => void;
  /** The daemon's half of `/v1/status`; the server fills in `runtime` and `url`. */
  daemonStatus: () => Omit<SiteRuntimeStatus, 'runtime' | 'url'>;
  /** `/readyz` is 200 only when this says so and a generation is installed. */
  ready: () => boolean;
  /** The daemon creates the registry (and adds sync/feedback gauges); the server registers its metrics in it. */
  metrics: Registry;
  log: (level: 'debug' | 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
}

export interface RuntimeServer {
  readonly url: string;
  readonly host: string;
  readonly port: number;
  status(): RuntimeRequestStatus;
  /** Stops accepting requests, lets in-flight streams finish (up to drainMs), then closes. */
  close(drainMs?: number): Promise<void>;
}
