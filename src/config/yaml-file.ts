/**
 * Reads a YAML file and validates it against a zod schema, turning every problem into a UserError
 * that names the file, the line and the field (`sites/a.yaml:7: labels.tier: expected string`).
 *
 * Used for edgectl.yaml, sites/*.yaml, artifact.yaml, policy.yaml and rollout specs, so every
 * YAML input in the tool reports errors the same way.
 */
import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument, isMap, isSeq, type Node } from 'yaml';
import type { z } from 'zod';
import { UserError } from '../foundation/errors.js';

export interface YamlProblem {
  file: string;
  line: number;
  field: string;
  message: string;
}

export function formatProblem(p: YamlProblem): string {
  return `${p.file}:${p.line}: ${p.field ? `${p.field}: ` : ''}${p.message}`;
}

/** Finds the YAML node at a path so a schema error can be pinned to its line. */
function lineOf(doc: ReturnType<typeof parseDocument>, lc: LineCounter, path: PropertyKey[]): number {
  let node: unknown = doc.contents;
  let lastPos = (doc.contents as Node | null)?.range?.[0] ?? 0;
  for (const key of path) {
    if (isMap(node)) {
      const pair = node.items.find((it) => {
        const k = it.key as { value?: unknown } | null;
        return k !== null && typeof k === 'object' && String(k.value) === String(key);
      });
      if (!pair) break;
      const keyNode = pair.key as Node | null;
      if (keyNode?.range) lastPos = keyNode.range[0];
      node = pair.value;
    } else if (isSeq(node) && typeof key === 'number') {
      node = node.items[key];
    } else break;
    const r = (node as Node | null)?.range;
    if (r) lastPos = r[0];
  }
  return lc.linePos(lastPos).line;
}

export interface ParsedYaml<T> {
  value: T;
  /** Line of a field path, for errors found after schema validation (duplicates, unknown refs). */
  lineOf(path: PropertyKey[]): number;
}

/** Parses YAML text; throws UserError (exit 2) listing every problem with file:line: field. */
export function parseYamlWithSchema<S extends z.ZodType>(
  text: string,
  file: string,
  schema: S,
): ParsedYaml<z.infer<S>> {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0) {
    const problems = doc.errors.map((e) => ({
      file,
      line: e.linePos?.[0]?.line ?? 1,
      field: '',
      message: e.message.split('\n')[0] ?? e.message,
    }));
    throw yamlError(file, problems);
  }
  const raw: unknown = doc.toJS();
  const result = schema.safeParse(raw ?? {});
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      const path = issue.path as PropertyKey[];
      let message = issue.message;
      let fieldPath = path;
      if (issue.code === 'unrecognized_keys') {
        const keys = (issue as { keys: string[] }).keys;
        fieldPath = [...path, keys[0] ?? ''];
        message = `unknown field${keys.length > 1 ? 's' : ''} ${keys.map((k) => `"${k}"`).join(', ')}`;
      }
      return { file, line: lineOf(doc, lc, fieldPath), field: fieldPath.map(String).join('.'), message };
    });
    throw yamlError(file, problems);
  }
  return { value: result.data, lineOf: (p) => lineOf(doc, lc, p) };
}

export function yamlError(file: string, problems: YamlProblem[]): UserError {
  const first = problems[0];
  const head = first ? formatProblem(first) : `${file}: invalid`;
  const rest = problems.slice(1).map((p) => `\n  ${formatProblem(p)}`);
  return new UserError(`${head}${rest.join('')}`, {
    code: 'E_INVALID_YAML',
    suggestion: `Fix ${file} and run the command again.`,
    details: { file, problems },
  });
}

export function readYamlWithSchema<S extends z.ZodType>(
  path: string,
  schema: S,
  displayPath = path,
): ParsedYaml<z.infer<S>> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new UserError(`${displayPath}: cannot read file (${(err as NodeJS.ErrnoException).code ?? err})`, {
      code: 'E_READ',
      suggestion: 'Check the path.',
    });
  }
  return parseYamlWithSchema(text, displayPath, schema);
}
