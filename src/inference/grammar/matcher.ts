/**
 * `ConstraintMatcher`: the `TokenConstraint` decoding uses, over one xgrammar `GrammarMatcher`.
 * The mask of the next position is cached until the state changes (the draft asks for it, then a
 * rollback may return to a state whose mask we already had, but xgrammar recomputes it cheaply
 * from its own per-state cache). `maskMs` adds up the time spent computing masks: the mask's cost
 * per token that `bench:structured` reports.
 */
import type { XgrammarModule } from './loader.js';
import type { TokenConstraint } from './types.js';

type Matcher = Awaited<ReturnType<XgrammarModule['GrammarMatcher']['createGrammarMatcher']>>;

export class ConstraintMatcher implements TokenConstraint {
  private cached: Uint32Array | undefined;
  /** Tokens accepted and not rolled back. */
  steps = 0;
  /** Milliseconds spent computing masks. */
  maskMs = 0;
  masks = 0;

  constructor(
    private readonly m: Matcher,
    readonly vocabSize: number,
  ) {}

  async mask(): Promise<Uint32Array> {
    if (this.cached) return this.cached;
    const t0 = performance.now();
    const words = await this.m.getNextTokenBitmask();
    this.maskMs += performance.now() - t0;
    this.masks++;
    // xgrammar's Int32Array viewed unsigned (bit 31 is an ordinary token).
    this.cached = new Uint32Array(words.buffer, words.byteOffset, words.length);
    return this.cached;
  }

  accept(token: number): boolean {
    const ok = this.m.acceptToken(token);
    if (ok) {
      this.steps++;
      this.cached = undefined;
    }
    return ok;
  }

  rollBack(n: number): void {
    if (n <= 0) return;
    if (n > this.steps) throw new RangeError(`cannot roll back ${n} of ${this.steps} accepted tokens`);
    this.m.rollBack(n);
    this.steps -= n;
    this.cached = undefined;
  }

  isTerminated(): boolean {
    return this.m.isTerminated();
  }

  dispose(): void {
    this.m.dispose();
  }
}
