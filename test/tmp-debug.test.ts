import { it } from 'vitest';
import { loadTestGeneration, makeGenerationDir, startTestRuntime } from './runtime/serve/helpers.js';
it('debug', async () => {
  const gen = await loadTestGeneration(makeGenerationDir({ policy: 'version: 1\nrouting:\n  default: edge\n' }));
  const rt = await startTestRuntime(gen, undefined);
  const tools = [{ type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: { zone: { type: 'integer', minimum: -12, maximum: 14 } }, required: ['zone'], additionalProperties: false } } }];
  for (const extra of [{ tool_choice: 'required', parallel_tool_calls: false }, { tool_choice: 'required' }, { response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object', properties: { zone: { type: 'integer' } }, required: ['zone'] } } } }]) {
    const res = await fetch(`${rt.server.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'draft', messages: [{ role: 'user', content: 'What time is it?' }], ...(extra.response_format ? {} : { tools }), ...extra, max_tokens: 60 }) });
    console.log(JSON.stringify(await res.json()));
  }
  await rt.server.close(100); await gen.dispose();
});
