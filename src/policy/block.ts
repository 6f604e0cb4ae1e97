/**
 * Block rules (docs/running-sites.md, policy in docs/formats.md): decides whether a prompt is refused before
 * any model sees it, and with which message. Owns keyword and pattern matching for the policy's
 * `block` list. Rules are checked in policy order and the first match decides, so the refusal a
 * user sees is predictable. Keywords match case-insensitively as whole words or phrases (`bomb`
 * does not match `bombastic`; any run of whitespace inside a phrase matches any other), patterns
 * are the policy's regular expressions, also case-insensitive. The check runs on the original
 * (unredacted) prompt so a rule can name things redaction would hide. The same compiled rules
 * screen passages retrieved for RAG (src/runtime/engine/retrieval-screen.ts), which are withheld
 * rather than refusing the request.
 */
import type { BlockRule, Policy } from './schema.js';

export type BlockDecision =
  | { blocked: false }
  | {
      blocked: true;
      /** The rule's name (for logs, metrics and the response's policy field). */
      rule: string;
      /** The refusal the user sees. */
      message: string;
      /** Which keyword or pattern of the rule matched (never the user's text). */
      matched: string;
    };

interface CompiledRule {
  name: string;
  message: string;
  tests: { label: string; re: RegExp }[];
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** A whole-word, case-insensitive matcher for a keyword or phrase. */
export function keywordRegex(keyword: string): RegExp {
  const words = keyword.trim().split(/\s+/).map(escapeRegex).join('\\s+');
  // Letters, digits and underscore count as word characters in every script.
  const before = /^[\p{L}\p{N}_]/u.test(keyword.trim()) ? '(?<![\\p{L}\\p{N}_])' : '';
  const after = /[\p{L}\p{N}_]$/u.test(keyword.trim()) ? '(?![\\p{L}\\p{N}_])' : '';
  return new RegExp(`${before}${words}${after}`, 'iu');
}

function compileRule(rule: BlockRule): CompiledRule {
  const tests = [
    ...(rule.keywords ?? []).map((k) => ({ label: `keyword "${k}"`, re: keywordRegex(k) })),
    ...(rule.patterns ?? []).map((p) => ({ label: `pattern /${p}/`, re: new RegExp(p, 'i') })),
  ];
  return { name: rule.name, message: rule.message, tests };
}

/** A policy's block rules compiled once. */
export class BlockRules {
  private readonly rules: CompiledRule[];

  constructor(policy: Pick<Policy, 'block'>) {
    this.rules = (policy.block ?? []).map(compileRule);
  }

  check(text: string): BlockDecision {
    for (const rule of this.rules) {
      for (const t of rule.tests) {
        if (t.re.test(text))
          return { blocked: true, rule: rule.name, message: rule.message, matched: t.label };
      }
    }
    return { blocked: false };
  }
}

const compiled = new WeakMap<object, BlockRules>();

/** The first block rule of `policy` that matches `text`, or `{ blocked: false }`. */
export function checkBlocked(text: string, policy: Pick<Policy, 'block'>): BlockDecision {
  let rules = compiled.get(policy);
  if (!rules) {
    rules = new BlockRules(policy);
    compiled.set(policy, rules);
  }
  return rules.check(text);
}
