/**
 * A bounded best-k list: keeps the k best (score, position) pairs seen, best first. A higher score is
 * better; between equal scores the lower position is, so the list is the same whatever order the
 * candidates arrive in (exhaustive and pruned BM25 search must agree exactly, bm25-search.ts).
 * Insertion into a sorted array beats a heap for the k (10-100) an index query keeps, and the
 * threshold test rejects almost every candidate after the first few hundred.
 */
export class TopK {
  readonly items: { pos: number; score: number }[] = [];
  constructor(readonly k: number) {}

  get full(): boolean {
    return this.items.length >= this.k;
  }

  /** The score a candidate must reach to enter (−Infinity while the list is not full). */
  get threshold(): number {
    return this.full ? (this.items[this.items.length - 1]?.score ?? -Infinity) : -Infinity;
  }

  /** Whether (pos, score) would enter the list. */
  admits(pos: number, score: number): boolean {
    if (this.k <= 0) return false;
    const last = this.full ? this.items[this.items.length - 1] : undefined;
    return !last || score > last.score || (score === last.score && pos < last.pos);
  }

  push(pos: number, score: number): void {
    if (!this.admits(pos, score)) return;
    let i = Math.min(this.items.length, this.k - 1);
    for (;;) {
      const prev = this.items[i - 1];
      if (!prev || prev.score > score || (prev.score === score && prev.pos < pos)) break;
      i--;
    }
    this.items.splice(i, 0, { pos, score });
    if (this.items.length > this.k) this.items.pop();
  }
}
