/**
 * `response_format` on the verifier's `/v1/completions` (issue #18): a site's cloud route sends
 * its constraint this way, so cloud-only output follows the same grammar, compiled by the same
 * grammar module as the site's (src/inference/grammar) for the same tokenizer, which is what makes
 * constrained cloud-only greedy output equal to constrained speculative output. Faults are 400s
 * naming `response_format` (the field, or the schema's JSON path).
 */
import { z } from 'zod';
import { isEdgectlError } from '../../foundation/errors.js';
import { HttpError, parseBody } from '../../http/http.js';
import { grammarEngine, type CompiledConstraint } from '../../inference/grammar/index.js';
import { constraintOf, verifierResponseFormatSchema } from '../../inference/grammar/response-format.js';
import type { VerifierContext } from './context.js';

const bodySchema = z.object({ response_format: verifierResponseFormatSchema.nullable().optional() });

/** The compiled constraint of a completion body's `response_format`; undefined without one. */
export async function completionConstraint(
  ctx: VerifierContext,
  raw: unknown,
): Promise<CompiledConstraint | undefined> {
  if (raw === undefined || raw === null) return undefined;
  const constraint = constraintOf(
    parseBody(bodySchema, { response_format: raw }).response_format ?? undefined,
  );
  if (constraint === undefined) return undefined;
  try {
    return await grammarEngine().compile(ctx.model.tokenizer, constraint, {
      vocabSize: ctx.verifier.vocabSize,
      eosTokenIds: [...ctx.model.eos],
    });
  } catch (err) {
    if (!isEdgectlError(err)) throw err;
    const code = err.code === 'E_GRAMMAR' ? 'unsupported_schema' : 'invalid_schema';
    throw new HttpError(400, err.message, code, 'invalid_request_error', {}, 'response_format');
  }
}
