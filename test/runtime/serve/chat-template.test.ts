/**
 * /v1/chat/completions renders with the model's own chat_template: a template that refuses the
 * chat is a 400 naming the template and the message index, and the fixture's transcript template
 * still gives one line per turn.
 */
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LoadedGeneration } from '../../../src/runtime/engine/generation.js';
import { DRAFT_DIR, loadTestGeneration, startTestRuntime, tempDir, type TestRuntime } from './helpers.js';

const NO_TOOLS =
  "{% for message in messages %}{% if message['role'] == 'tool' %}{{ raise_exception('tool messages are not supported') }}{% endif %}{{ message['role'] }}: {{ message['content'] }}\n{% endfor %}{% if add_generation_prompt %}Agent:{% endif %}";

let gen: LoadedGeneration;
let rt: TestRuntime;

beforeAll(async () => {
  const dir = tempDir('edgectl-gen-');
  const model = join(dir, 'model');
  cpSync(DRAFT_DIR, model, { recursive: true });
  const cfgFile = join(model, 'tokenizer_config.json');
  const cfg = JSON.parse(readFileSync(cfgFile, 'utf8')) as Record<string, unknown>;
  writeFileSync(cfgFile, JSON.stringify({ ...cfg, chat_template: NO_TOOLS }));
  gen = await loadTestGeneration(dir);
  rt = await startTestRuntime(gen, undefined);
});

afterAll(async () => {
  await rt.server.close();
  await gen.dispose();
});

async function chat(messages: unknown[]): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${rt.server.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'draft', messages, max_tokens: 8 }),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

describe('chat templates at the site runtime', () => {
  it('answers with the model template and stops at its turn end', async () => {
    const ok = await chat([{ role: 'user', content: 'hello' }]);
    expect(ok.status).toBe(200);
    const choices = ok.json.choices as { message: { content: string } }[];
    expect(choices[0]?.message.content).not.toContain('\n');
  });

  it('is a 400 naming the template and the message index when the template refuses the chat', async () => {
    const bad = await chat([
      { role: 'user', content: 'hello' },
      {
        role: 'assistant',
        content: null,
        tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'answer', arguments: '{}' } }],
      },
      { role: 'tool', content: '42', tool_call_id: 'call_1' },
    ]);
    expect(bad.status).toBe(400);
    const error = bad.json.error as { message: string; param: string; code: string };
    expect(error.param).toBe('messages');
    expect(error.code).toBe('chat_template_error');
    expect(error.message).toMatch(
      /^messages\[2\]: .*tokenizer_config\.json chat_template cannot render the chat \(.*tool messages are not supported/,
    );
  });
});
