/**
 * Adaptive draft length: picks k (tokens drafted per verify round) from the running acceptance rate
 * and the measured costs of drafting and of a verify round trip.
 *
 * Rule (reference specdecode.md §1.1 and §7): with per-token acceptance α (i.i.d. model, Leviathan
 * Eq. 1) a round of k drafts yields E(k) = (1 − α^{k+1}) / (1 − α) tokens, and a sequential
 * draft→verify round costs T(k) = k·t_draft + t_round(k), where t_round(k) = RTT + t_v(k) is the
 * verify call including the network. We choose the k in [min, max] that maximizes E(k) / T(k),
 * i.e. the expected tokens per second (specdecode.md §7 "tok/s = 1000·E/(k·t_d + RTT + t_v)"). So k
 * grows when acceptance is high or the round trip is expensive relative to a draft step, and
 * shrinks to 1 when the draft keeps being rejected. α is estimated by maximum likelihood under the
 * geometric model: a round with n of k accepted contributes n successes and one failure if n < k
 * (a fully accepted round is censored), with exponential forgetting so the estimate follows the
 * text, and a weak prior so the first rounds do not swing k to an extreme. t_draft is an
 * exponentially weighted mean per drafted token. t_round(k) = a + b·(k + 1) is fitted by
 * exponentially weighted least squares over the observed (k, round time) pairs: over a WAN the
 * fixed part a (RTT) dominates, while a local or compute-bound verifier pays per scored position
 * (specdecode.md §3.6: a 5-token pass costs 1.1–1.7× a 1-token step); without spread in k yet, the
 * whole round time counts as fixed.
 */

export interface AdaptiveKOptions {
  min?: number;
  max?: number;
  /** k used until the first round has been measured. */
  initial?: number;
  /** Weight of old observations after one round (0..1); 0.9 ≈ a memory of ten rounds. */
  decay?: number;
  /** Prior acceptance rate and its weight in pseudo-observations. */
  priorAlpha?: number;
  priorWeight?: number;
  /**
   * Costs to use instead of measuring them: k then follows acceptance alone, so the same tokens
   * give the same draft lengths however busy the machine is. For seeded sampling (whose output
   * depends on where rounds split) and for shadow runs (which must draft as the served request
   * did, not as an idle site would).
   */
  costs?: RoundCosts;
}

/** What a round costs, as adaptive k's rule sees it. */
export interface RoundCosts {
  /** Milliseconds per drafted token. */
  draftMsPerToken: number;
  /** Milliseconds of a verify round, network included. */
  roundMs: number;
}

/**
 * The costs a seeded sampled request assumes: a draft token at 1/20 of a round (a CPU draft and a
 * WAN verifier, as on the fixture pair at 20 ms RTT).
 */
export const SEEDED_ROUND_COSTS: RoundCosts = { draftMsPerToken: 1, roundMs: 20 };

export interface RoundObservation {
  drafted: number;
  accepted: number;
  /** Milliseconds spent drafting the round's tokens. */
  draftMs: number;
  /** Milliseconds of the verify call as the client saw it (network included). */
  roundMs: number;
}

export const K_MIN = 1;
/**
 * The longest draft adaptive k may choose. 12, not 8: on the fixture pair at 20 ms RTT the
 * verifier spent about 20% less CPU per output token and streams ran faster with this cap (k
 * averaged 8, 6.0-6.2 tokens per round instead of 5.2-5.4), while a cap of 16 gained nothing more
 * (docs/benchmarks.md, Speculative). Rejection past the cap only costs verifier positions.
 */
export const K_MAX = 12;

/**
 * Where an adaptive round stops drafting early: once the draft's own probability that its whole
 * proposal is right falls below this (src/inference/speculative.ts). On the fixture pair's greedy
 * traces, replayed with k <= 12, 0.05 scores 24% fewer positions per round for 9% fewer tokens per
 * round; in the benchmark it drafts 23% fewer tokens and scores 12% fewer positions per output
 * token, with verifier CPU per token unchanged within run-to-run noise (docs/benchmarks.md). It may end a round below adaptive k's minimum: a token
 * the draft itself doubts is rarely accepted, and sending it only lowers the running acceptance
 * that the router's `abstain.minAcceptance` watches.
 */
export const DEFAULT_MIN_DRAFT_CONFIDENCE = 0.05;

export class AdaptiveK {
  readonly min: number;
  readonly max: number;
  private readonly decay: number;
  private readonly priorAlpha: number;
  private readonly priorWeight: number;
  private successes = 0;
  private failures = 0;
  private draftMsPerToken: number | undefined;
  /** Exponentially weighted sums for the least-squares fit of round time on k + 1. */
  private fit = { w: 0, x: 0, y: 0, xx: 0, xy: 0 };
  private rounds = 0;
  private current: number;
  private readonly costs: RoundCosts | undefined;

  constructor(opts: AdaptiveKOptions = {}) {
    this.min = Math.max(1, Math.floor(opts.min ?? K_MIN));
    this.max = Math.max(this.min, Math.floor(opts.max ?? K_MAX));
    this.decay = opts.decay ?? 0.9;
    this.priorAlpha = opts.priorAlpha ?? 0.6;
    this.priorWeight = opts.priorWeight ?? 2;
    this.current = clamp(Math.floor(opts.initial ?? 4), this.min, this.max);
    if (opts.costs !== undefined) {
      const { draftMsPerToken, roundMs } = opts.costs;
      if (!(draftMsPerToken >= 0 && roundMs > 0 && Number.isFinite(draftMsPerToken + roundMs))) {
        throw new RangeError(`adaptive k costs must be finite, draft >= 0 and round > 0 ms`);
      }
      this.costs = { draftMsPerToken, roundMs };
    }
  }

  /** The draft length to use for the next round. */
  get k(): number {
    return this.current;
  }

  /** Current estimate of the per-token acceptance rate α. */
  get alpha(): number {
    const w = this.priorWeight;
    return (this.successes + w * this.priorAlpha) / (this.successes + this.failures + w);
  }

  observe(round: RoundObservation): void {
    if (round.drafted <= 0) return;
    this.successes = this.successes * this.decay + round.accepted;
    this.failures = this.failures * this.decay + (round.accepted < round.drafted ? 1 : 0);
    if (this.costs !== undefined) {
      this.current = bestK(this.alpha, this.costs.draftMsPerToken, this.costs.roundMs, this.min, this.max);
      return;
    }
    const perToken = round.draftMs / round.drafted;
    this.draftMsPerToken = ewma(this.draftMsPerToken, perToken, this.decay);
    const f = this.fit;
    const x = round.drafted + 1;
    const d = this.decay;
    this.fit = {
      w: f.w * d + 1,
      x: f.x * d + x,
      y: f.y * d + round.roundMs,
      xx: f.xx * d + x * x,
      xy: f.xy * d + x * round.roundMs,
    };
    const cost = this.roundCost();
    this.current = bestK(this.alpha, this.draftMsPerToken, cost.fixed, this.min, this.max, cost.perPosition);
    // Every 16th round drafts one token less (or more at the minimum), so the fit always sees some
    // spread in k and cannot lock onto a length whose cost it never compared. Lossless either way.
    if (++this.rounds % 16 === 0 && this.max > this.min) this.current += this.current > this.min ? -1 : 1;
  }

  /** The fitted verify round cost: fixed milliseconds plus milliseconds per scored position. */
  roundCost(): { fixed: number; perPosition: number } {
    const { w, x, y, xx, xy } = this.fit;
    if (w === 0) return { fixed: 0, perPosition: 0 };
    const spread = w * xx - x * x;
    // Need real spread in k (relative to its scale) before trusting a slope.
    const slope = spread > 1e-6 * w * xx ? Math.max(0, (w * xy - x * y) / spread) : 0;
    return { fixed: Math.max(0, (y - slope * x) / w), perPosition: slope };
  }
}

/** Expected tokens per verify round with k drafts at acceptance α (Leviathan Eq. 1). */
export function expectedTokensPerRound(alpha: number, k: number): number {
  if (alpha >= 1 - 1e-9) return k + 1;
  return (1 - Math.pow(alpha, k + 1)) / (1 - alpha);
}

/** The k in [min, max] maximizing E(k) / (k·draftMs + roundMs + perPositionMs·(k + 1)). */
export function bestK(
  alpha: number,
  draftMs: number,
  roundMs: number,
  min = K_MIN,
  max = K_MAX,
  perPositionMs = 0,
): number {
  let best = min;
  let bestRate = -Infinity;
  const td = Math.max(draftMs, 1e-6);
  const tr = Math.max(roundMs, 1e-6);
  for (let k = min; k <= max; k++) {
    const rate = expectedTokensPerRound(alpha, k) / (k * td + tr + perPositionMs * (k + 1));
    if (rate > bestRate * (1 + 1e-9)) {
      bestRate = rate;
      best = k;
    }
  }
  return best;
}

function ewma(prev: number | undefined, value: number, decay: number): number {
  return prev === undefined ? value : prev * decay + value * (1 - decay);
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v));
}
