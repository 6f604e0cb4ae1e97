/**
 * Benchmark prompt files: JSON Lines with one `{"prompt": "..."}` object per line (the format of
 * artifacts/prompts/*.jsonl). A bad line is a UserError naming the file, the line and the field.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { UserError } from '../foundation/errors.js';

const lineSchema = z.looseObject({ prompt: z.string().min(1) });

export function readPromptsFile(path: string): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new UserError(
      `${path}: cannot read prompts file (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
      {
        suggestion: 'Pass --prompts <file.jsonl> with one {"prompt": "..."} per line.',
      },
    );
  }
  const prompts: string[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      throw new UserError(`${path}:${i + 1}: invalid JSON (${(err as Error).message})`, {
        suggestion: 'Each line must be one JSON object such as {"prompt": "Hello"}.',
      });
    }
    const parsed = lineSchema.safeParse(value);
    if (!parsed.success) {
      throw new UserError(`${path}:${i + 1}: prompt: ${parsed.error.issues[0]?.message ?? 'invalid'}`, {
        suggestion: 'Each line needs a non-empty "prompt" string.',
      });
    }
    prompts.push(parsed.data.prompt);
  });
  if (prompts.length === 0)
    throw new UserError(`${path}: no prompts`, { suggestion: 'Add {"prompt": "..."} lines.' });
  return prompts;
}
