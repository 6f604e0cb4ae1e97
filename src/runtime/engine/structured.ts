/**
 * Structured outputs in the site engine (issue #18): compiles a request's `GrammarConstraint` for
 * the generation's tokenizer (schema faults become 400s naming `response_format`), maps it to the
 * verifier's `response_format` for the cloud route, and checks the finished output. The rule the
 * client can rely on: a constrained answer parses and validates against its schema, or it finishes
 * `length` and `edgectl.structured` says why (`{valid: false, reason}`).
 */
import { isEdgectlError } from '../../foundation/errors.js';
import {
  grammarEngine,
  type CompiledConstraint,
  type ConstraintMatcher,
  type GrammarConstraint,
} from '../../inference/grammar/index.js';
import { HttpError } from '../../http/http.js';
import type { LoadedGeneration } from './generation.js';
import type { ExecFinish } from './route-executor.js';

/** `edgectl.structured` of a constrained answer. */
export interface StructuredInfo {
  valid: boolean;
  reason?: string;
}

/** Compiles `constraint` for `g`'s draft tokenizer; a 400 naming `response_format` when it cannot be used. */
export async function compileConstraint(
  g: LoadedGeneration,
  constraint: GrammarConstraint | undefined,
): Promise<CompiledConstraint | undefined> {
  if (constraint === undefined) return undefined;
  try {
    return await grammarEngine().compile(g.tokenizer, constraint, {
      vocabSize: g.model.vocabSize,
      eosTokenIds: g.model.config.eosTokenIds,
    });
  } catch (err) {
    if (!isEdgectlError(err)) throw err;
    const code = err.code === 'E_GRAMMAR' ? 'unsupported_schema' : 'invalid_schema';
    throw new HttpError(400, err.message, code, 'invalid_request_error', {}, 'response_format');
  }
}

/**
 * A fresh matcher advanced over the tokens already produced (a fallback to the draft continues
 * the answer under the same grammar); undefined without a constraint.
 */
export async function matcherAfter(
  compiled: CompiledConstraint | undefined,
  emitted: readonly number[],
): Promise<ConstraintMatcher | undefined> {
  if (compiled === undefined) return undefined;
  const m = await compiled.matcher();
  for (const token of emitted) {
    if (!m.accept(token)) {
      m.dispose();
      throw new Error(`token ${token} already produced does not follow the grammar`);
    }
  }
  return m;
}

/**
 * The finish and `edgectl.structured` of a constrained answer whose whole text is `text`: an
 * output that does not validate (max_tokens ran out, a stop string cut it) finishes `length`.
 */
export function checkStructured(
  compiled: CompiledConstraint,
  text: string,
  finish: ExecFinish,
): { finish: ExecFinish; info: StructuredInfo } {
  if (finish === 'aborted') return { finish, info: { valid: false, reason: 'aborted' } };
  const check = compiled.check(text);
  if (check.valid) return { finish, info: { valid: true } };
  const why =
    finish === 'length' ? 'max_tokens reached before the output was complete' : `ended by ${finish}`;
  return { finish: 'length', info: { valid: false, reason: `${why}: ${check.reason ?? 'invalid'}` } };
}

/**
 * The constraint as the verifier's `response_format` (OpenAI's, plus SGLang's `structural_tag`
 * shape for tool-call grammars), so cloud-only output follows the same grammar.
 */
export function responseFormatWire(c: GrammarConstraint): Record<string, unknown> {
  switch (c.kind) {
    case 'json_object':
      return { type: 'json_object' };
    case 'json_schema':
      return {
        type: 'json_schema',
        json_schema: {
          name: c.name ?? 'output',
          schema: c.schema,
          ...(c.strict === undefined ? {} : { strict: c.strict }),
        },
      };
    case 'structural_tag':
      return { type: 'structural_tag', structures: c.tags, triggers: c.triggers };
  }
}
