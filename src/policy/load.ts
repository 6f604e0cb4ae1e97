/**
 * Loading a policy directory (a materialized `policy` artifact: `<dir>/policy.yaml`) into the
 * typed policy with every optional section filled with its defaults, so the runtime reads
 * `policy.verifier.fallback` without asking whether the section exists. The defaults come from the
 * schema itself (each section parsed from `{}`), so they cannot drift from what `edgectl publish`
 * validates. Problems are UserErrors (exit 2) naming the file, line and field (schema.ts).
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../foundation/errors.js';
import { loadPolicyFile, parsePolicy, policySchema, type Policy } from './schema.js';

type Section<K extends keyof Policy> = NonNullable<Policy[K]>;

/** A policy with every section present. */
export interface EffectivePolicy extends Policy {
  routing: Policy['routing'] & { speculative: NonNullable<Policy['routing']['speculative']> };
  redaction: Section<'redaction'>;
  abstain: Section<'abstain'>;
  verifier: Section<'verifier'>;
  circuitBreaker: Section<'circuitBreaker'>;
}

export const POLICY_FILE = 'policy.yaml';

const shape = policySchema.shape;
const routingShape = shape.routing.shape;

/** Fills every optional section with the schema's defaults. */
export function withDefaults(policy: Policy): EffectivePolicy {
  return {
    ...policy,
    routing: {
      ...policy.routing,
      speculative: policy.routing.speculative ?? routingShape.speculative.unwrap().parse({}),
    },
    redaction: policy.redaction ?? shape.redaction.unwrap().parse({ enabled: false }),
    abstain: policy.abstain ?? shape.abstain.unwrap().parse({}),
    verifier: policy.verifier ?? shape.verifier.unwrap().parse({}),
    circuitBreaker: policy.circuitBreaker ?? shape.circuitBreaker.unwrap().parse({}),
  };
}

/** Parses policy YAML text (e.g. from a registry blob) into the effective policy. */
export function parseEffectivePolicy(text: string, file: string): EffectivePolicy {
  return withDefaults(parsePolicy(text, file).value);
}

/** Loads `<dir>/policy.yaml`; `displayDir` is how the directory is named in messages. */
export function loadPolicyDir(dir: string, displayDir = dir): EffectivePolicy {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new UserError(`policy directory ${displayDir} does not exist`, {
      code: 'E_POLICY_DIR',
      suggestion: 'pass the directory of a policy artifact (it holds policy.yaml)',
      details: { dir: displayDir },
    });
  }
  const file = join(dir, POLICY_FILE);
  const shown = join(displayDir, POLICY_FILE);
  if (!existsSync(file)) {
    throw new UserError(`${shown} does not exist`, {
      code: 'E_POLICY_MISSING',
      suggestion: `a policy directory needs ${POLICY_FILE} (see artifacts/policies/default/ for an example)`,
      details: { file: shown },
    });
  }
  return withDefaults(loadPolicyFile(file, shown));
}
