/**
 * Structured-output benchmark (`npm run bench:structured`, issue #18): prints one JSON object. On
 * the committed fixture pair, a real verifier process behind a 20 ms RTT proxy and a site runtime
 * in this process, BENCH_REQUESTS (64) extraction requests (support prompts, a JSON schema of six
 * fields) run over BENCH_STREAMS (16) concurrent streams in three passes of the same prompts:
 * constrained speculative, unconstrained speculative (the baseline for tokens per verify round),
 * and constrained cloud-only. Per pass: schema-valid share (JSON.parse + the site's ajv verdict),
 * p50/p95 end-to-end, completion tokens per verify round, and the verifier's CPU seconds per 1k
 * output tokens (its own process counter, /v1/stats). Last, the mask's cost per token: constrained
 * edge generation in this process with the matcher's own timer (xgrammar's bitmask) and the time
 * to apply the mask to a logits row.
 *
 * Env: BENCH_REQUESTS, BENCH_STREAMS, BENCH_RTT_MS (20), BENCH_MAX_TOKENS (160: the six-field JSON is ~100 tokens with the fixtures' 1k vocabulary).
 */
import { join } from 'node:path';
import { readPromptsFile } from '../src/bench/prompts.js';
import { percentile, round } from '../src/bench/summary.js';
import { startDelayProxy } from '../src/bench/delay-proxy.js';
import { collect, generate } from '../src/inference/generate.js';
import { applyMask, GrammarEngine } from '../src/inference/grammar/index.js';
import { LmSession } from '../src/inference/model-session.js';
import { TextTokenizer } from '../src/inference/tokenizer.js';
import {
  DRAFT_DIR,
  loadTestGeneration,
  makeGenerationDir,
  startTestRuntime,
  startVerifierProcess,
  TEST_POLICY,
} from '../test/runtime/serve/helpers.js';
import { REPO_ROOT } from '../test/helpers/cli.js';

const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 64);
const STREAMS = Number(process.env.BENCH_STREAMS ?? 16);
const RTT_MS = Number(process.env.BENCH_RTT_MS ?? 20);
const MAX_TOKENS = Number(process.env.BENCH_MAX_TOKENS ?? 160);

/** Six fields a support ticket extractor would fill; enums and bounds so weak models terminate. */
const SCHEMA = {
  type: 'object',
  properties: {
    intent: { enum: ['refund', 'billing', 'delivery', 'account', 'other'] },
    product: { enum: ['phone', 'laptop', 'plan', 'none'] },
    priority: { type: 'integer', minimum: 1, maximum: 5 },
    urgent: { type: 'boolean' },
    sentiment: { enum: ['negative', 'neutral', 'positive'] },
    summary: { type: 'string', maxLength: 12 },
  },
  required: ['intent', 'product', 'priority', 'urgent', 'sentiment', 'summary'],
  additionalProperties: false,
};
const FORMAT = { type: 'json_schema', json_schema: { name: 'ticket', schema: SCHEMA, strict: true } };

interface Answer {
  /** The route that answered and whether it fell back to the draft alone (a verifier timeout). */
  route: string;
  unverified: boolean;
  ms: number;
  valid: boolean;
  tokens: number;
  rounds: number;
}

interface Reply {
  choices: { text: string }[];
  usage: { completion_tokens: number };
  edgectl: {
    route: string;
    unverified: boolean;
    stats: { verifyRounds: number };
    structured?: { valid: boolean };
  };
}

async function one(url: string, prompt: string, route: string, constrained: boolean): Promise<Answer> {
  const t0 = performance.now();
  const res = await fetch(`${url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-edgectl-route': route },
    body: JSON.stringify({
      model: 'draft',
      prompt: `${prompt}\nTicket as JSON:`,
      max_tokens: MAX_TOKENS,
      temperature: 0,
      ...(constrained ? { response_format: FORMAT } : {}),
    }),
  });
  const body = (await res.json()) as Reply;
  if (res.status !== 200) throw new Error(`${res.status} ${JSON.stringify(body)}`);
  let parses = false;
  try {
    JSON.parse(body.choices[0]?.text ?? '');
    parses = true;
  } catch {
    // counted as invalid
  }
  return {
    route: body.edgectl.route,
    unverified: body.edgectl.unverified,
    ms: performance.now() - t0,
    valid: parses && body.edgectl.structured?.valid === true,
    tokens: body.usage.completion_tokens,
    rounds: body.edgectl.stats.verifyRounds,
  };
}

async function pass(
  siteUrl: string,
  verifierUrl: string,
  prompts: string[],
  route: string,
  constrained: boolean,
) {
  const cpu0 = ((await (await fetch(`${verifierUrl}/v1/stats`)).json()) as { cpuSeconds: number }).cpuSeconds;
  const answers: Answer[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: STREAMS }, async () => {
      while (next < prompts.length)
        answers.push(await one(siteUrl, prompts[next++] as string, route, constrained));
    }),
  );
  const wallS = (performance.now() - t0) / 1000;
  const cpu1 = ((await (await fetch(`${verifierUrl}/v1/stats`)).json()) as { cpuSeconds: number }).cpuSeconds;
  const tokens = answers.reduce((s, a) => s + a.tokens, 0);
  const rounds = answers.reduce((s, a) => s + a.rounds, 0);
  const ms = answers.map((a) => a.ms);
  return {
    route,
    constrained,
    requests: answers.length,
    /** Answers not served by the route asked for (an edge fallback after a verifier failure). */
    fellBack: answers.filter((a) => a.route !== route || a.unverified).length,
    schemaValidPct: round((100 * answers.filter((a) => a.valid).length) / answers.length, 1),
    e2eMs: { p50: round(percentile(ms, 50), 0), p95: round(percentile(ms, 95), 0) },
    tokensPerRequest: round(tokens / answers.length, 1),
    tokensPerVerifyRound: rounds > 0 ? round(tokens / rounds, 2) : null,
    verifierCpuSecondsPer1kTokens: round(((cpu1 - cpu0) / tokens) * 1000, 3),
    wallSeconds: round(wallS, 1),
  };
}

/** The mask's cost per token on the draft, in process: xgrammar's bitmask plus applying it. */
async function maskCost(prompts: string[]) {
  const draft = await LmSession.load(DRAFT_DIR);
  const tok = TextTokenizer.load(DRAFT_DIR);
  const compiled = await new GrammarEngine().compile(
    tok,
    { kind: 'json_schema', schema: SCHEMA },
    {
      vocabSize: draft.vocabSize,
      eosTokenIds: draft.config.eosTokenIds,
    },
  );
  let maskMs = 0;
  let masks = 0;
  let tokens = 0;
  let genMs = 0;
  for (const p of prompts.slice(0, 16)) {
    const m = await compiled.matcher();
    const t0 = performance.now();
    const out = await collect(generate(draft, tok.encode(p), { maxTokens: MAX_TOKENS, constraint: m }));
    genMs += performance.now() - t0;
    maskMs += m.maskMs;
    masks += m.masks;
    tokens += out.tokens.length;
    m.dispose();
  }
  const row = new Float32Array(draft.vocabSize);
  const mask = await (await compiled.matcher()).mask();
  const t0 = performance.now();
  for (let i = 0; i < 1000; i++) applyMask(row, mask);
  const applyMs = (performance.now() - t0) / 1000;
  await draft.release();
  return {
    bitmaskMsPerToken: round(maskMs / masks, 4),
    applyMaskMsPerToken: round(applyMs, 4),
    edgeMsPerToken: round(genMs / Math.max(1, tokens), 3),
    tokens,
  };
}

async function main(): Promise<void> {
  const all = readPromptsFile(join(REPO_ROOT, 'artifacts/prompts/support.jsonl'));
  const prompts = Array.from({ length: REQUESTS }, (_, i) => all[i % all.length] as string);
  const verifier = await startVerifierProcess();
  const target = new URL(verifier.url);
  const proxy = await startDelayProxy({ host: target.hostname, port: Number(target.port) }, RTT_MS / 2);
  // The test policy's 1.5 s verifier timeout would turn queueing at 16 streams into edge fallbacks.
  const policy = TEST_POLICY.replace('timeoutMs: 1500', 'timeoutMs: 120000');
  const gen = await loadTestGeneration(makeGenerationDir({ policy }));
  const rt = await startTestRuntime(gen, proxy.url, { maxConcurrent: STREAMS, maxQueue: STREAMS * 4 });
  try {
    const site = rt.server.url;
    const passes = [];
    passes.push(await pass(site, verifier.url, prompts, 'speculative', true));
    passes.push(await pass(site, verifier.url, prompts, 'speculative', false));
    passes.push(await pass(site, verifier.url, prompts, 'cloud', true));
    const [constrained, free] = passes;
    const keep =
      constrained?.tokensPerVerifyRound != null && free?.tokensPerVerifyRound != null
        ? round(constrained.tokensPerVerifyRound / free.tokensPerVerifyRound, 3)
        : null;
    const result = {
      requests: REQUESTS,
      streams: STREAMS,
      rttMs: RTT_MS,
      maxTokens: MAX_TOKENS,
      passes,
      constrainedKeepsOfUnconstrainedTokensPerRound: keep,
      mask: await maskCost(prompts),
    };
    console.log(JSON.stringify(result, null, 2));
  } finally {
    await rt.server.close(1000);
    await gen.dispose();
    await proxy.close();
    await verifier.kill('SIGTERM');
  }
}

await main();
