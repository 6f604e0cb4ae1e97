/**
 * Statistics of one generation, in the terms vLLM reports so numbers compare (reference
 * specdecode.md §1.5): drafted and accepted tokens, acceptance rate, mean acceptance length
 * (tokens per verify round = 1 + accepted / rounds, counting the verifier's own token), acceptance
 * per draft position, plus time to first token and throughput. The router, the site runtime's
 * /v1/status, feedback reports and `edgectl bench speculative` all read this one shape.
 */

export type GenerationMode = 'single' | 'speculative';

export interface GenerationStats {
  mode: GenerationMode;
  promptTokens: number;
  /** Tokens returned to the caller (end-of-sequence excluded). */
  tokens: number;
  /** Verifier calls (speculative only; the prefill at session start is not counted). */
  verifyRounds: number;
  drafted: number;
  accepted: number;
  /** accepted / drafted; 0 when nothing was drafted. */
  acceptanceRate: number;
  /** Tokens gained per verify round: 1 + accepted / verifyRounds (vLLM's mean acceptance length). */
  meanAcceptanceLength: number;
  /** Draft length used in each round. */
  kPerRound: number[];
  /** Drafted tokens accepted in each round. */
  acceptedPerRound: number[];
  /** acceptedAtPosition[i]: rounds in which draft position i was accepted (vLLM's per-position counts). */
  acceptedAtPosition: number[];
  /** Milliseconds from the start of generation to the first token (undefined if none). */
  ttftMs: number | undefined;
  durationMs: number;
  /** Time spent drafting and in verify calls (speculative). */
  draftMs: number;
  verifyMs: number;
  tokensPerSecond: number;
}

export class StatsRecorder {
  private readonly stats: GenerationStats;
  private readonly start: number;

  constructor(
    mode: GenerationMode,
    promptTokens: number,
    private readonly now: () => number,
  ) {
    this.start = now();
    this.stats = {
      mode,
      promptTokens,
      tokens: 0,
      verifyRounds: 0,
      drafted: 0,
      accepted: 0,
      acceptanceRate: 0,
      meanAcceptanceLength: 0,
      kPerRound: [],
      acceptedPerRound: [],
      acceptedAtPosition: [],
      ttftMs: undefined,
      durationMs: 0,
      draftMs: 0,
      verifyMs: 0,
      tokensPerSecond: 0,
    };
  }

  token(): void {
    if (this.stats.tokens === 0) this.stats.ttftMs = this.now() - this.start;
    this.stats.tokens++;
  }

  round(k: number, accepted: number, draftMs: number, verifyMs: number): void {
    const s = this.stats;
    s.verifyRounds++;
    s.drafted += k;
    s.accepted += accepted;
    s.kPerRound.push(k);
    s.acceptedPerRound.push(accepted);
    for (let i = 0; i < accepted; i++) s.acceptedAtPosition[i] = (s.acceptedAtPosition[i] ?? 0) + 1;
    for (let i = accepted; i < k; i++) s.acceptedAtPosition[i] ??= 0;
    s.draftMs += draftMs;
    s.verifyMs += verifyMs;
  }

  finish(): GenerationStats {
    const s = this.stats;
    s.durationMs = this.now() - this.start;
    s.acceptanceRate = s.drafted > 0 ? s.accepted / s.drafted : 0;
    s.meanAcceptanceLength = s.verifyRounds > 0 ? 1 + s.accepted / s.verifyRounds : 0;
    s.tokensPerSecond = s.durationMs > 0 ? (s.tokens * 1000) / s.durationMs : 0;
    return {
      ...s,
      kPerRound: [...s.kPerRound],
      acceptedPerRound: [...s.acceptedPerRound],
      acceptedAtPosition: [...s.acceptedAtPosition],
    };
  }
}
