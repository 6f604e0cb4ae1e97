/**
 * JSON Schema checks with ajv 8, before and after constrained decoding (issue #18): a schema is
 * checked against its meta-schema (and compiled, which resolves every `$ref`) before xgrammar ever
 * sees it, so an invalid schema is a clear 400 naming the JSON path at fault instead of an
 * `abort()` inside WebAssembly; and every finished output is parsed and validated against the
 * schema, so a response that says it is valid is.
 *
 * The dialect follows `$schema`: 2020-12 (what zod 4's toJSONSchema writes) and 2019-09 get their
 * ajv classes, anything else draft-07 (OpenAI's examples, pydantic, zod-to-json-schema). Formats
 * are not checked (no ajv-formats): xgrammar does not enforce them either, and unknown keywords
 * are tolerated (`strict: false`) as OpenAI's own validator tolerates them.
 */
import { createRequire } from 'node:module';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { UserError } from '../../foundation/errors.js';
import type { StructuredCheck } from './types.js';

/** The part of ajv's class we use (its CommonJS default export does not type well under nodenext). */
interface AjvCore {
  validateSchema(schema: object): boolean | Promise<unknown>;
  compile(schema: object): ValidateFunction;
  errors?: ErrorObject[] | null;
}
type AjvClass = new (opts: object) => AjvCore;
// ajv ships CommonJS with `exports.default`; createRequire avoids the ESM default-interop guesswork.
const require = createRequire(import.meta.url);
const load = (path: string): AjvClass => (require(path) as { default: AjvClass }).default;
const AJV_OPTIONS = { strict: false, allErrors: false, validateFormats: false, logger: false };

let instances: { draft7: AjvCore; d2019: AjvCore; d2020: AjvCore } | undefined;

function ajvFor(schema: Record<string, unknown>): AjvCore {
  instances ??= {
    draft7: new (load('ajv'))(AJV_OPTIONS),
    d2019: new (load('ajv/dist/2019.js'))(AJV_OPTIONS),
    d2020: new (load('ajv/dist/2020.js'))(AJV_OPTIONS),
  };
  const dialect = typeof schema.$schema === 'string' ? schema.$schema : '';
  if (dialect.includes('2020-12')) return instances.d2020;
  if (dialect.includes('2019-09')) return instances.d2019;
  return instances.draft7;
}

function describe(e: ErrorObject | undefined): string {
  if (!e) return 'invalid';
  const extra = 'allowedValues' in e.params ? ` (${JSON.stringify(e.params.allowedValues)})` : '';
  return `${e.message ?? 'invalid'}${extra}`;
}

/**
 * Checks `schema` and returns its validator; a UserError (400) naming `where` + the JSON pointer of
 * the fault otherwise (e.g. `response_format.json_schema.schema/properties/age/type: must be ...`).
 */
export function compileSchema(schema: unknown, where: string): ValidateFunction {
  if (schema === null || typeof schema !== 'object' || Array.isArray(schema)) {
    throw new UserError(`${where}: must be a JSON Schema object`, {
      code: 'E_SCHEMA',
      suggestion: 'Give a JSON Schema such as {"type": "object", "properties": {...}}.',
    });
  }
  const s = schema as Record<string, unknown>;
  const ajv = ajvFor(s);
  // validateSchema throws for an unknown $schema; report it like any other fault.
  let ok: boolean;
  try {
    ok = ajv.validateSchema(s) as boolean;
  } catch (err) {
    throw new UserError(`${where}/$schema: ${(err as Error).message}`, { code: 'E_SCHEMA' });
  }
  if (!ok) {
    const first = ajv.errors?.[0];
    throw new UserError(`${where}${first?.instancePath ?? ''}: ${describe(first)}`, {
      code: 'E_SCHEMA',
      suggestion: 'Fix the schema at that JSON path (JSON Schema draft-07 or 2020-12).',
    });
  }
  try {
    return ajv.compile(s);
  } catch (err) {
    const e = err as Error & { missingRef?: string };
    const at = e.missingRef === undefined ? '' : ` (the $ref "${e.missingRef}" points nowhere)`;
    throw new UserError(`${where}: ${e.message}${at}`, {
      code: 'E_SCHEMA',
      suggestion: 'Every $ref must point at a definition inside the schema (e.g. "#/$defs/Name").',
    });
  }
}

/** Whether `text` is JSON that `validate` accepts, and why not. */
export function checkJson(text: string, validate: ValidateFunction | undefined): StructuredCheck {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { valid: false, reason: `not JSON: ${(err as Error).message}` };
  }
  if (validate === undefined) {
    const object = value !== null && typeof value === 'object' && !Array.isArray(value);
    return object ? { valid: true } : { valid: false, reason: 'not a JSON object' };
  }
  if (validate(value)) return { valid: true };
  const e = validate.errors?.[0];
  return { valid: false, reason: `${e?.instancePath || '/'}: ${describe(e)}` };
}
