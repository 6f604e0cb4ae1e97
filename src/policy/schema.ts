/**
 * The policy artifact's `policy.yaml` (docs/formats.md "Artifacts", docs/running-sites.md): its zod schema, its
 * types and the loader that reports problems as `file:line: field: message` (exit 2). The schema is
 * the contract between `edgectl publish` (which refuses an invalid policy) and the site runtime's
 * router, redactor and block rules (which read the same types). Unknown fields are errors, so a typo
 * never silently disables a rule; regular expressions are compiled here so a bad pattern fails at
 * publish, not on the first request at a site.
 */
import { isSupportedCountry } from 'libphonenumber-js/max';
import { z } from 'zod';
import { parseYamlWithSchema, readYamlWithSchema, type ParsedYaml } from '../config/yaml-file.js';
import { DEFAULT_MIN_DRAFT_CONFIDENCE } from '../inference/adaptive-k.js';
import { retrievalPolicySchema } from './retrieval-policy.js';

export const ROUTES = ['edge', 'speculative', 'cloud'] as const;
export type Route = (typeof ROUTES)[number];

export const BUILTIN_DETECTORS = ['email', 'phone', 'card', 'iban', 'ip', 'national_id'] as const;
export type BuiltinDetector = (typeof BUILTIN_DETECTORS)[number];

const FLAG_RE = /^[imsu]*$/;

/** A JavaScript regular expression source plus flags, compiled to check it. */
const regexSource = z.string().min(1, 'empty pattern');

function checkRegex(
  source: string,
  flags: string | undefined,
  ctx: z.RefinementCtx,
  path: (string | number)[],
): void {
  try {
    new RegExp(source, flags ?? '');
  } catch (err) {
    ctx.addIssue({ code: 'custom', path, message: `invalid regular expression: ${(err as Error).message}` });
  }
}

const range = z
  .strictObject({ min: z.number().nonnegative().optional(), max: z.number().nonnegative().optional() })
  .refine((r) => r.min !== undefined || r.max !== undefined, { message: 'give min, max or both' })
  .refine((r) => r.min === undefined || r.max === undefined || r.min <= r.max, {
    message: 'min is above max',
  });

const keywordList = z.array(z.string().min(1)).min(1);

export const routingRuleSchema = z.strictObject({
  name: z.string().min(1),
  /** All given conditions must hold. */
  when: z
    .strictObject({
      /** Prompt length in tokens. */
      promptTokens: range.optional(),
      /** Any of these words (case-insensitive, whole word) in the prompt. */
      keywords: keywordList.optional(),
      /** Mean next-token entropy (nats) of the draft model over the prompt. */
      entropy: range.optional(),
    })
    .refine((w) => Object.keys(w).length > 0, { message: 'a rule needs at least one condition' }),
  route: z.enum(ROUTES),
});

export const patternSchema = z
  .strictObject({
    name: z.string().regex(/^[a-z][a-z0-9_]*$/, 'names are lower_snake_case (they become placeholders)'),
    regex: regexSource,
    flags: z.string().regex(FLAG_RE, 'flags may only be i, m, s, u').optional(),
  })
  .superRefine((p, ctx) => checkRegex(p.regex, p.flags, ctx, ['regex']));

export const blockRuleSchema = z
  .strictObject({
    name: z.string().min(1),
    /** Regular expressions; any match blocks. */
    patterns: z.array(regexSource).optional(),
    /** Words or phrases (case-insensitive); any match blocks. */
    keywords: keywordList.optional(),
    /** The refusal the user sees. */
    message: z.string().min(1),
  })
  .refine((r) => (r.patterns?.length ?? 0) + (r.keywords?.length ?? 0) > 0, {
    message: 'a block rule needs patterns or keywords',
  })
  .superRefine((r, ctx) => r.patterns?.forEach((p, i) => checkRegex(p, 'i', ctx, ['patterns', i])));

export const policySchema = z
  .strictObject({
    /** Format version of this file. */
    version: z.literal(1),
    description: z.string().optional(),
    routing: z.strictObject({
      default: z.enum(ROUTES),
      /** First matching rule wins; no match uses `default`. */
      rules: z.array(routingRuleSchema).default([]),
      /**
       * Routes a request may force (per-request override, e.g. a `route` field). Default: any of the
       * three; `[]` forbids overrides, so the rules and abstain thresholds always decide.
       */
      overrides: z.array(z.enum(ROUTES)).default([...ROUTES]),
      /**
       * Draft length bounds for speculative decoding (k adapts between them), and the confidence
       * below which a round stops drafting early (0 = always draft k).
       */
      speculative: z
        .strictObject({
          minDraftTokens: z.number().int().min(1).default(1),
          maxDraftTokens: z.number().int().min(1).max(64).default(8),
          minDraftConfidence: z.number().min(0).lt(1).default(DEFAULT_MIN_DRAFT_CONFIDENCE),
        })
        .refine((s) => s.minDraftTokens <= s.maxDraftTokens, {
          message: 'minDraftTokens is above maxDraftTokens',
        })
        .optional(),
    }),
    redaction: z
      .strictObject({
        enabled: z.boolean().default(true),
        detectors: z.array(z.enum(BUILTIN_DETECTORS)).default([]),
        patterns: z.array(patternSchema).default([]),
        /**
         * Regions (ISO 3166 alpha-2, e.g. GB, DE) whose national phone formats are recognized
         * without a `+` country code. Default: src/policy/pii.ts DEFAULT_PHONE_REGIONS.
         */
        phoneRegions: z
          .array(
            z.string().refine((c) => /^[A-Z]{2}$/.test(c) && isSupportedCountry(c), {
              message: 'must be a supported ISO 3166 alpha-2 region code (upper case), e.g. US, GB, DE',
            }),
          )
          .optional(),
      })
      .superRefine((r, ctx) => {
        const names = new Set<string>(r.detectors);
        r.patterns.forEach((p, i) => {
          if (names.has(p.name)) {
            ctx.addIssue({
              code: 'custom',
              path: ['patterns', i, 'name'],
              message: `duplicate detector name "${p.name}"`,
            });
          }
          names.add(p.name);
        });
      })
      .optional(),
    block: z.array(blockRuleSchema).default([]),
    /** Escalate to the cloud when the edge is unsure. */
    abstain: z
      .strictObject({
        /** Draft entropy (nats) above which a request goes to the cloud. */
        entropy: z.number().positive().optional(),
        /** Running acceptance rate below which speculative requests go to the cloud. */
        minAcceptance: z.number().min(0).max(1).optional(),
      })
      .optional(),
    verifier: z
      .strictObject({
        /**
         * What to do when the verifier is unreachable: answer from the draft alone, fail, or have the
         * site's cloud model (`runtime.cloud`) answer (else as edge-unverified).
         */
        fallback: z.enum(['edge-unverified', 'error', 'cloud']).default('error'),
        timeoutMs: z.number().int().positive().default(5000),
      })
      .optional(),
    /** Retrieval (RAG): rules that attach index passages, and the staleness budget (retrieval-policy.ts). */
    retrieval: retrievalPolicySchema.optional(),
    circuitBreaker: z
      .strictObject({
        /** Consecutive verifier failures that open the breaker. */
        failureThreshold: z.number().int().min(1).default(5),
        /** How long the breaker stays open before one trial request. */
        openSeconds: z.number().positive().default(30),
      })
      .optional(),
  })
  .superRefine((p, ctx) => {
    const seen = new Set<string>();
    p.routing.rules.forEach((r, i) => {
      if (seen.has(r.name)) {
        ctx.addIssue({
          code: 'custom',
          path: ['routing', 'rules', i, 'name'],
          message: `duplicate rule name "${r.name}"`,
        });
      }
      seen.add(r.name);
    });
  });

export type Policy = z.infer<typeof policySchema>;
export type RoutingRule = z.infer<typeof routingRuleSchema>;
export type BlockRule = z.infer<typeof blockRuleSchema>;
export type RedactionPattern = z.infer<typeof patternSchema>;

/** Parses policy YAML text; UserError (exit 2) with `file:line: field: message` on any problem. */
export function parsePolicy(text: string, file: string): ParsedYaml<Policy> {
  return parseYamlWithSchema(text, file, policySchema);
}

export function loadPolicyFile(path: string, displayPath = path): Policy {
  return readYamlWithSchema(path, policySchema, displayPath).value;
}
