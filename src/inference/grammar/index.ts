/**
 * Structured outputs by grammar-constrained decoding (issue #18; docs/architecture.md, "Structured
 * outputs"): constraint types, the xgrammar-backed engine and matcher, token masks and their wire
 * form, and ajv schema checks. A leaf of the inference layer: no HTTP, no verifier imports.
 */
export type { GrammarConstraint, StructuredCheck, TokenConstraint } from './types.js';
export { CompiledConstraint, GrammarEngine, grammarEngine, type CompileOptions } from './engine.js';
export { ConstraintMatcher } from './matcher.js';
export {
  applyMask,
  countAllowed,
  decodeMask,
  encodeMask,
  isAllowed,
  maskOf,
  type TokenMaskWire,
} from './mask.js';
export { checkJson, compileSchema } from './schema-check.js';
