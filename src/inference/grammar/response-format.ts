/**
 * OpenAI's `response_format` (issue #18) as a zod schema and its `GrammarConstraint`, shared by the
 * site's endpoints (src/runtime/serve/response-format.ts) and the verifier's /v1/completions so
 * both accept the same shapes: `text` (no constraint), `json_object`, `json_schema: {name, schema,
 * strict, description}`, and, for the verifier only (a site's cloud route sends tool-call grammars
 * that way), SGLang's `structural_tag: {structures: [{begin, schema, end}], triggers}`. The schema
 * itself is checked later, by ajv, when it is compiled (engine.ts), so its faults name JSON paths.
 */
import { z } from 'zod';
import type { GrammarConstraint } from './types.js';

const schemaObject = z.record(z.string(), z.unknown());

const jsonSchemaFormat = z
  .object({
    type: z.literal('json_schema'),
    json_schema: z
      .object({
        name: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1-64 letters, digits, _ or -'),
        description: z.string().optional(),
        schema: schemaObject.optional(),
        strict: z.boolean().nullable().optional(),
      })
      .strict(),
  })
  .strict();

const structuralTagFormat = z
  .object({
    type: z.literal('structural_tag'),
    structures: z
      .array(z.object({ begin: z.string().min(1), schema: schemaObject, end: z.string() }).strict())
      .min(1),
    triggers: z.array(z.string().min(1)).min(1),
  })
  .strict();

const openAiFormats = [
  z.object({ type: z.literal('text') }).strict(),
  z.object({ type: z.literal('json_object') }).strict(),
  jsonSchemaFormat,
] as const;

/** `response_format` as OpenAI defines it (the site's endpoints). */
export const responseFormatSchema = z.discriminatedUnion('type', openAiFormats);
/** Plus `structural_tag` (the verifier's /v1/completions, for a site's cloud route). */
export const verifierResponseFormatSchema = z.discriminatedUnion('type', [
  ...openAiFormats,
  structuralTagFormat,
]);
export type ResponseFormat = z.infer<typeof verifierResponseFormatSchema>;

/** The constraint a parsed `response_format` asks for; undefined for `text`. */
export function constraintOf(format: ResponseFormat | undefined): GrammarConstraint | undefined {
  if (format === undefined) return undefined;
  switch (format.type) {
    case 'text':
      return undefined;
    case 'json_object':
      return { kind: 'json_object' };
    case 'json_schema': {
      const j = format.json_schema;
      // OpenAI allows json_schema without a schema: any JSON object then.
      if (j.schema === undefined) return { kind: 'json_object' };
      return {
        kind: 'json_schema',
        schema: j.schema,
        name: j.name,
        ...(typeof j.strict === 'boolean' ? { strict: j.strict } : {}),
      };
    }
    case 'structural_tag':
      return { kind: 'structural_tag', tags: format.structures, triggers: format.triggers };
  }
}
