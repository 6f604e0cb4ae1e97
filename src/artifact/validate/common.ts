/**
 * Shared pieces of the per-kind validators: the context they receive, required-file checks and JSON
 * reading with errors that name the file and field (exit 2).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../../foundation/errors.js';
import type { Store } from '../../registry/store.js';
import type { TrustRoot } from '../../registry/trust.js';
import type { ArtifactYamlFile } from '../../config/artifact-yaml.js';
import type { SourceFile } from '../source.js';

export type Meta = Record<string, unknown>;

/** What the validators that need no registry (model, policy) read: the directory alone. */
export interface LocalValidateContext {
  dir: string;
  files: SourceFile[];
  yaml: ArtifactYamlFile;
}

export interface ValidateContext extends LocalValidateContext {
  /** The registry, for kinds that depend on other artifacts (adapters on their base model). */
  store: Store;
  trust: TrustRoot | undefined;
}

export function invalidFile(file: string, field: string, message: string, suggestion?: string): UserError {
  return new UserError(`${file}: ${field ? `${field}: ` : ''}${message}`, {
    code: 'E_ARTIFACT_INVALID',
    ...(suggestion ? { suggestion } : {}),
    details: { file, field },
  });
}

/** Throws unless every named file is in the artifact. */
export function requireFiles(ctx: LocalValidateContext, kind: string, names: string[]): void {
  const have = new Set(ctx.files.map((f) => f.path));
  const missing = names.filter((n) => !have.has(n));
  if (missing.length > 0) {
    throw new UserError(`${ctx.dir}: a ${kind} artifact needs ${missing.join(', ')} (missing)`, {
      code: 'E_ARTIFACT_INVALID',
      suggestion: `a ${kind} directory holds ${names.join(', ')}`,
      details: { dir: ctx.dir, missing },
    });
  }
}

export function hasFile(ctx: LocalValidateContext, name: string): boolean {
  return ctx.files.some((f) => f.path === name);
}

/** Parses a JSON object from bytes; errors name the file. */
export function parseJsonObject(text: string, file: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw invalidFile(file, '', `not valid JSON (${(err as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalidFile(file, '', 'expected a JSON object');
  }
  return value as Record<string, unknown>;
}

export function readJsonObject(
  ctx: LocalValidateContext,
  name: string,
): { value: Record<string, unknown>; file: string } {
  const file = join(ctx.dir, name);
  return { value: parseJsonObject(readFileSync(file, 'utf8'), file), file };
}

export function positiveInt(
  obj: Record<string, unknown>,
  field: string,
  file: string,
  label = field,
): number {
  const v = obj[field];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
    throw invalidFile(file, label, `expected a positive integer, got ${JSON.stringify(v)}`);
  }
  return v;
}

export function optionalPositiveInt(
  obj: Record<string, unknown>,
  field: string,
  file: string,
): number | undefined {
  return obj[field] === undefined ? undefined : positiveInt(obj, field, file);
}

export function stringList(value: unknown, field: string, file: string): string[] {
  if (!Array.isArray(value) || value.length === 0 || !value.every((v) => typeof v === 'string' && v !== '')) {
    throw invalidFile(file, field, `expected a non-empty list of names, got ${JSON.stringify(value)}`);
  }
  return value as string[];
}

/** The `lora` section a draft model's config.json may carry: which modules, up to which rank. */
export interface LoraSupport {
  targetModules: string[];
  maxRank: number;
}

export function loraSupportOf(config: Record<string, unknown>, file: string): LoraSupport | undefined {
  const lora = config.lora;
  if (lora === undefined) return undefined;
  if (typeof lora !== 'object' || lora === null || Array.isArray(lora)) {
    throw invalidFile(file, 'lora', 'expected an object { target_modules, max_rank }');
  }
  const l = lora as Record<string, unknown>;
  return {
    targetModules: stringList(l.target_modules, 'lora.target_modules', file),
    maxRank: positiveInt(l, 'max_rank', file, 'lora.max_rank'),
  };
}
