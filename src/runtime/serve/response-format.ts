/**
 * `response_format` on the site's chat and completions endpoints (issue #18): parsed here (a 400
 * naming the field, e.g. `response_format.json_schema.name`) into the engine's `GrammarConstraint`,
 * which the engine compiles (schema faults: 400 naming the JSON path) and honours on every route.
 * `text` and an absent field mean no constraint.
 */
import { z } from 'zod';
import { parseBody } from '../../http/http.js';
import { constraintOf, responseFormatSchema } from '../../inference/grammar/response-format.js';
import type { GrammarConstraint } from '../../inference/grammar/types.js';

const bodySchema = z.object({ response_format: responseFormatSchema.nullable().optional() });

/** The constraint of a request body's `response_format` (the body as received). */
export function parseResponseFormat(body: unknown): GrammarConstraint | undefined {
  const raw = (body as { response_format?: unknown } | null | undefined)?.response_format;
  if (raw === undefined) return undefined;
  const parsed = parseBody(bodySchema, { response_format: raw });
  return constraintOf(parsed.response_format ?? undefined);
}
