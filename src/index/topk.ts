/**
 * A bounded best-k list: keeps the k highest scores seen, in descending order. Insertion into a
 * sorted array beats a heap for the k (10-100) an index query keeps, and the threshold test rejects
 * almost every candidate after the first few hundred.
 */
export class TopK {
  readonly items: { pos: number; score: number }[] = [];
  constructor(readonly k: number) {}

  /** The score a candidate must beat to enter (−Infinity while the list is not full). */
  get threshold(): number {
    return this.items.length < this.k ? -Infinity : (this.items[this.items.length - 1]?.score ?? -Infinity);
  }

  push(pos: number, score: number): void {
    if (this.k <= 0 || score <= this.threshold) return;
    let i = this.items.length;
    if (i === this.k) i--;
    while (i > 0 && (this.items[i - 1]?.score ?? Infinity) < score) i--;
    this.items.splice(i, 0, { pos, score });
    if (this.items.length > this.k) this.items.pop();
  }
}
