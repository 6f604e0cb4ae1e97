/**
 * Fixtures of the tool-call tests: the Qwen2 family fixture with Qwen2.5's own tool-calling chat
 * template (test/fixtures/templates/qwen2.5-tools.jinja, as published with Qwen2.5-Instruct), a
 * template that uses `tools` and `tool_calls`, unlike the fixture models' transcript template.
 */
import { copyFileSync, cpSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const ROOT = join(import.meta.dirname, '../../..');
export const QWEN_TOOLS_TEMPLATE = join(ROOT, 'test/fixtures/templates/qwen2.5-tools.jinja');

/** A copy of the Qwen2 family fixture whose chat_template.jinja is Qwen2.5's. */
export function qwenToolsDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'edgectl-qwen-tools-'));
  cpSync(join(ROOT, 'test/fixtures/families/qwen2'), dir, { recursive: true });
  copyFileSync(QWEN_TOOLS_TEMPLATE, join(dir, 'chat_template.jinja'));
  return dir;
}
