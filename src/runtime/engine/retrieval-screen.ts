/**
 * Block rules on retrieved passages (docs/running-sites.md "Retrieval (RAG)"): a passage that
 * matches one of the policy's `block` rules is withheld before it reaches the prompt, so it is
 * neither attached nor cited, and so never reaches the draft, the verifier or the cloud. The
 * request itself is not refused: the question is the user's, the passage is the site's own
 * document, and the answer uses the passages that remain (or none). The check is the very matcher
 * the user's text goes through (src/policy/block.ts, compiled once per generation), so keywords and
 * patterns mean the same thing in both places; it sees each passage as the model would
 * (`[<id>] <text>`, whitespace collapsed). What is withheld is reported by rule name and count only,
 * never by text: a passage's content is exactly what the rule says must not travel.
 */
import type { BlockDecision } from '../../policy/block.js';

/** The matcher: a generation's compiled `BlockRules` (check = first matching rule, policy order). */
export interface PassageScreen {
  check(text: string): BlockDecision;
}

/** Passages one block rule withheld (the first rule, in policy order, that matched each). */
export interface WithheldByRule {
  rule: string;
  passages: number;
}

export interface Screened<P> {
  /** Passages no rule matched, in their original (rank) order. */
  kept: P[];
  /** Passages withheld, per rule in the order the rules first withheld one; empty when none was. */
  withheld: WithheldByRule[];
  /** Total passages withheld. */
  count: number;
}

/** Splits `passages` into those to attach and counts of those withheld, by rule (module comment). */
export function screenPassages<P>(
  passages: readonly P[],
  rules: PassageScreen,
  textOf: (p: P) => string,
): Screened<P> {
  const kept: P[] = [];
  // A Map, not an object: rule names are the policy author's strings (`__proto__` included).
  const byRule = new Map<string, number>();
  for (const p of passages) {
    const d = rules.check(textOf(p));
    if (d.blocked) byRule.set(d.rule, (byRule.get(d.rule) ?? 0) + 1);
    else kept.push(p);
  }
  const withheld = [...byRule].map(([rule, n]) => ({ rule, passages: n }));
  return { kept, withheld, count: passages.length - kept.length };
}
