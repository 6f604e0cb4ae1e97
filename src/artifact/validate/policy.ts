/**
 * Validation of `policy` artifacts: `policy.yaml` against the policy schema (src/policy/schema.ts),
 * errors as `file:line: field: message` (exit 2).
 */
import { join } from 'node:path';
import { loadPolicyFile } from '../../policy/schema.js';
import { requireFiles, type Meta, type LocalValidateContext } from './common.js';

export function validatePolicy(ctx: LocalValidateContext): Meta {
  requireFiles(ctx, 'policy', ['policy.yaml']);
  const policy = loadPolicyFile(join(ctx.dir, 'policy.yaml'));
  return {
    defaultRoute: policy.routing.default,
    routingRules: policy.routing.rules.length,
    redactionDetectors: [
      ...(policy.redaction?.detectors ?? []),
      ...(policy.redaction?.patterns ?? []).map((p) => p.name),
    ],
    blockRules: policy.block.length,
    verifierFallback: policy.verifier?.fallback ?? 'error',
    ...(policy.retrieval
      ? {
          retrievalRules: policy.retrieval.rules.length,
          ...(policy.retrieval.maxAge ? { retrievalMaxAge: policy.retrieval.maxAge } : {}),
        }
      : {}),
  };
}
