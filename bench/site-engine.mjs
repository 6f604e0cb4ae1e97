// The engine-alone baseline of `npm run bench:site` (overhead section), in its own plain Node
// process running the compiled code (dist/), as the site daemon does: a baseline inside the
// benchmark's own vite-node process would run transpiled-on-the-fly code next to the HTTP client
// and its heap, and be slower than the daemon's engine for reasons that have nothing to do with HTTP.
//
// Usage: node bench/site-engine.mjs <site data dir> [adapter]. Loads the site's current generation
// with the runtime's own loader, prints {"ready":true}, then answers each stdin line
// {"prompt", "maxTokens"} with {"ms", "cpuMs", "tokens", "text"}: `ms` is the engine's own time (`cpuMs` its CPU) for the
// request (redaction and tokenizing as the daemon does them, then greedy `generate` with no eos
// ids, so exactly maxTokens tokens), `text` the tokens decoded with placeholders restored (what the
// daemon should answer; decoded after the clock stops).
import { createInterface } from 'node:readline';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dist = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'src');
const { generate } = await import(join(dist, 'inference/generate.js'));
const { RedactionMap, restore } = await import(join(dist, 'policy/redact.js'));
const { loadGeneration } = await import(join(dist, 'runtime/engine/generation.js'));
const { currentGeneration } = await import(join(dist, 'site/agent.js'));
const { contextOf } = await import(join(dist, 'runtime/daemon/site-config.js'));

const [dataDir, adapter = 'support'] = process.argv.slice(2);
const cur = await currentGeneration(dataDir);
if (!cur) throw new Error(`${dataDir}: no generation installed`);
const gen = await loadGeneration(cur.dir, { id: cur.id, context: contextOf(cur.info, 1) });
const lora = gen.adapters.get(adapter)?.feeds;

async function run(prompt, maxTokens) {
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const map = new RedactionMap();
  const text = gen.redactor.enabled ? gen.redactor.redact(prompt, map).text : prompt;
  const promptIds = gen.tokenizer.encode(text);
  const ids = [];
  for await (const e of generate(gen.model, promptIds, {
    maxTokens,
    sampling: { temperature: 0 },
    eosTokenIds: [],
    ...(lora ? { lora } : {}),
  }))
    if (e.type === 'token') ids.push(e.token);
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const d = gen.tokenizer.streamDecoder(promptIds);
  let out = '';
  for (const id of ids) out += d.push(id);
  return {
    ms,
    cpuMs: (cpu.user + cpu.system) / 1000,
    tokens: ids.length,
    text: restore(out + d.flush(), map),
  };
}

process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim() === '') continue;
  const { prompt, maxTokens } = JSON.parse(line);
  process.stdout.write(`${JSON.stringify(await run(prompt, maxTokens))}\n`);
}
await gen.dispose();
