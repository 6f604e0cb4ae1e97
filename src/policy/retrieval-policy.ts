/**
 * The `retrieval` section of `policy.yaml` (docs/running-sites.md "Retrieval (RAG)"): rules that
 * attach passages of a site's index to chat requests that did not ask for them, and the index
 * staleness budget. A rule names an index (`assignments.indexes` of the site, by name), how many
 * passages (`k`) and optionally the keywords (case-insensitive, whole word, in the user's last
 * message) that trigger it; the first matching rule wins, and a request's own
 * `edgectl.retrieval` overrides every rule. `maxAge` is the staleness budget: an index whose newest
 * document is older serves with a warning (`stale: warn`, the default) or retrieval is refused
 * (`stale: refuse`: the request fails with 503 `index_stale` rather than answer from old text).
 */
import { z } from 'zod';
import { parseDuration } from '../foundation/duration.js';

/** Limits of k: passages become prompt tokens, and the draft model's context is small. */
export const MAX_RETRIEVAL_K = 20;

const duration = z.string().refine(
  (v) => {
    try {
      parseDuration(v);
      return true;
    } catch {
      return false;
    }
  },
  { message: 'must be a duration like 10m, 6h or 7d' },
);

export const retrievalRuleSchema = z.strictObject({
  name: z.string().min(1),
  /** The index's name (`index/<name>@...` assigned to the site). */
  index: z.string().regex(/^[a-z0-9]([a-z0-9_-]{0,62}[a-z0-9])?$/, 'an index name (index/<name>@...)'),
  k: z.number().int().min(1).max(MAX_RETRIEVAL_K).default(4),
  /** Any of these words (case-insensitive, whole word) in the last user message; absent: every chat. */
  keywords: z.array(z.string().min(1)).min(1).optional(),
});
export type RetrievalRule = z.infer<typeof retrievalRuleSchema>;

export const retrievalPolicySchema = z.strictObject({
  rules: z.array(retrievalRuleSchema).default([]),
  /** Staleness budget: the newest document of an index may be at most this old. */
  maxAge: duration.optional(),
  /** Past the budget: serve with a warning, or refuse retrieval (503 index_stale). */
  stale: z.enum(['warn', 'refuse']).default('warn'),
});
export type RetrievalPolicy = z.infer<typeof retrievalPolicySchema>;

function wordRe(word: string): RegExp {
  return new RegExp(
    `(^|[^\\p{L}\\p{N}_])${word.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}($|[^\\p{L}\\p{N}_])`,
    'iu',
  );
}

/** The first rule that applies to a chat whose last user message is `text`, if any. */
export function matchRetrievalRule(
  policy: RetrievalPolicy | undefined,
  text: string,
): RetrievalRule | undefined {
  return policy?.rules.find((r) => r.keywords === undefined || r.keywords.some((w) => wordRe(w).test(text)));
}
