/**
 * The router decision (docs/running-sites.md, routing): for one request, edge-only,
 * speculative or cloud, with the reason, from the active policy. Pure: the runtime measures the
 * inputs (prompt tokens, draft entropy on the prompt, running acceptance) and passes them in.
 *
 * Order of precedence:
 *  1. a per-request override wins when the policy lists that route in `routing.overrides`
 *     (a refused override is reported in `overrideRefused` and the policy decides);
 *  2. the first routing rule whose conditions all hold (`promptTokens` and `entropy` ranges are
 *     inclusive; `keywords` match whole words case-insensitively; a rule with an `entropy`
 *     condition does not match when no entropy was measured), else `routing.default`;
 *  3. abstain thresholds escalate to the cloud: draft entropy above `abstain.entropy` (edge or
 *     speculative routes), running acceptance below `abstain.minAcceptance` (speculative only;
 *     pass `runningAcceptance` only once it rests on enough samples).
 */
import { keywordRegex } from './block.js';
import type { Policy, Route, RoutingRule } from './schema.js';

export interface RouteInput {
  policy: Pick<Policy, 'routing' | 'abstain'>;
  promptTokens: number;
  promptText: string;
  /** Mean next-token entropy (nats) of the draft model over the prompt, when measured. */
  entropy?: number;
  /** Recent acceptance rate of speculative decoding at this site (0..1), when known. */
  runningAcceptance?: number;
  /** The route the request asks for. */
  override?: Route;
}

export type RouteSource = 'override' | 'rule' | 'default' | 'abstain-entropy' | 'abstain-acceptance';

export interface RouteDecision {
  route: Route;
  /** One line for logs and the response's route field, e.g. `rule "long-prompts": promptTokens 3200 >= 3000`. */
  reason: string;
  source: RouteSource;
  /** The matching routing rule (also set when an abstain threshold then escalated its route). */
  rule?: string;
  /** True when an abstain threshold moved the request to the cloud. */
  escalated: boolean;
  /** An override the policy does not allow (the decision ignores it). */
  overrideRefused?: Route;
}

const keywordCache = new WeakMap<RoutingRule, RegExp[]>();

function keywordTests(rule: RoutingRule): RegExp[] {
  let res = keywordCache.get(rule);
  if (!res) {
    res = (rule.when.keywords ?? []).map(keywordRegex);
    keywordCache.set(rule, res);
  }
  return res;
}

function inRange(value: number, r: { min?: number | undefined; max?: number | undefined }): boolean {
  return (r.min === undefined || value >= r.min) && (r.max === undefined || value <= r.max);
}

function describeRange(name: string, value: number, r: { min?: number; max?: number }): string {
  const parts = [];
  if (r.min !== undefined) parts.push(`>= ${r.min}`);
  if (r.max !== undefined) parts.push(`<= ${r.max}`);
  return `${name} ${round(value)} ${parts.join(' and ')}`;
}

function round(v: number): number {
  return Math.round(v * 1000) / 1000;
}

/** Why `rule` matches the input, or undefined when it does not. */
function ruleMatch(rule: RoutingRule, input: RouteInput): string | undefined {
  const why: string[] = [];
  const w = rule.when;
  if (w.promptTokens) {
    if (!inRange(input.promptTokens, w.promptTokens)) return undefined;
    why.push(describeRange('promptTokens', input.promptTokens, w.promptTokens));
  }
  if (w.entropy) {
    if (input.entropy === undefined || !inRange(input.entropy, w.entropy)) return undefined;
    why.push(describeRange('entropy', input.entropy, w.entropy));
  }
  if (w.keywords) {
    const tests = keywordTests(rule);
    const hit = w.keywords.find((_, i) => tests[i]!.test(input.promptText));
    if (hit === undefined) return undefined;
    why.push(`keyword "${hit}"`);
  }
  return why.join(', ');
}

/** Whether the runtime must measure draft entropy on the prompt for this policy. */
export function policyNeedsEntropy(policy: Pick<Policy, 'routing' | 'abstain'>): boolean {
  return policy.abstain?.entropy !== undefined || policy.routing.rules.some((r) => r.when.entropy);
}

export function decideRoute(input: RouteInput): RouteDecision {
  const { policy } = input;
  let overrideRefused: Route | undefined;
  if (input.override !== undefined) {
    const allowed = policy.routing.overrides ?? ['edge', 'speculative', 'cloud'];
    if (allowed.includes(input.override)) {
      return {
        route: input.override,
        reason: `override: the request asked for ${input.override}`,
        source: 'override',
        escalated: false,
      };
    }
    overrideRefused = input.override;
  }
  const refused = overrideRefused === undefined ? {} : { overrideRefused };

  let decision: RouteDecision | undefined;
  for (const rule of policy.routing.rules) {
    const why = ruleMatch(rule, input);
    if (why !== undefined) {
      decision = {
        route: rule.route,
        reason: `rule "${rule.name}": ${why}`,
        source: 'rule',
        rule: rule.name,
        escalated: false,
        ...refused,
      };
      break;
    }
  }
  decision ??= {
    route: policy.routing.default,
    reason: 'default route (no routing rule matched)',
    source: 'default',
    escalated: false,
    ...refused,
  };
  if (decision.route === 'cloud') return decision;

  const abstain = policy.abstain;
  if (abstain?.entropy !== undefined && input.entropy !== undefined && input.entropy > abstain.entropy) {
    return {
      ...decision,
      route: 'cloud',
      source: 'abstain-entropy',
      escalated: true,
      reason: `abstain: draft entropy ${round(input.entropy)} > ${abstain.entropy} (was ${decision.route}: ${decision.reason})`,
    };
  }
  if (
    decision.route === 'speculative' &&
    abstain?.minAcceptance !== undefined &&
    input.runningAcceptance !== undefined &&
    input.runningAcceptance < abstain.minAcceptance
  ) {
    return {
      ...decision,
      route: 'cloud',
      source: 'abstain-acceptance',
      escalated: true,
      reason: `abstain: running acceptance ${round(input.runningAcceptance)} < ${abstain.minAcceptance} (was speculative: ${decision.reason})`,
    };
  }
  return decision;
}
