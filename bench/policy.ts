/**
 * Policy benchmark (`npm run bench:policy`): prints one JSON object with what redaction and
 * streaming restoration cost per request, since both sit on every request's path.
 *
 * 1. `redact` of support prompts (about 1 KB with 3 PII values, and 16 KB with 40) under the
 *    default policy's six detectors plus its custom patterns; target <= 1 ms per 1 KB prompt.
 *    Baseline in the same run: one email-only regex pass over the same text (the cheapest
 *    useful redaction), so the factor shows what the other detectors and validation add.
 * 2. `StreamRestorer` over a 4 KB answer with placeholders, streamed in 4-character chunks (about
 *    one token each); target <= 5 µs per chunk. Baseline: `restore` of the whole answer at once.
 *
 * Each figure is the median of 7 timed rounds after a warm-up round.
 */
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadPolicyDir } from '../src/policy/load.js';
import { Redactor, StreamRestorer, restore } from '../src/policy/redact.js';
import { generateSentences } from '../test/policy/pii-fixtures.js';

const ROOT = join(fileURLToPath(import.meta.url), '../..');
const ROUNDS = 7;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const round = (v: number, d = 2) => Math.round(v * 10 ** d) / 10 ** d;

/** Median microseconds per call of `fn` over `calls` calls per round. */
function usPerCall(fn: () => unknown, calls: number): number {
  const rounds: number[] = [];
  for (let r = 0; r <= ROUNDS; r++) {
    const t0 = performance.now();
    for (let i = 0; i < calls; i++) fn();
    if (r > 0) rounds.push(((performance.now() - t0) * 1000) / calls);
  }
  return round(median(rounds));
}

const FILLER =
  'Hello, I have been a customer for years and the last order arrived late and damaged. The box was ' +
  'crushed and two of the bottles leaked over the rest of the items. I already contacted support twice ' +
  'and nobody answered, so I would like a refund or a replacement as soon as possible. ';

function prompt(targetBytes: number, piiSentences: number, seed: number): string {
  const pii = generateSentences(seed, Math.ceil(piiSentences / 6)).slice(0, piiSentences);
  let text = '';
  let i = 0;
  while (text.length < targetBytes) {
    text += i < pii.length ? `${pii[i]!.text} ` : FILLER;
    text += FILLER.slice(0, Math.max(0, Math.min(FILLER.length, targetBytes / (piiSentences + 1) - 100)));
    i++;
  }
  return text.slice(0, targetBytes);
}

const policy = loadPolicyDir(join(ROOT, 'artifacts/policies/default'));
const redactor = new Redactor(policy);
const EMAIL_ONLY = /[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}/g;

function redactCase(bytes: number, piiCount: number, calls: number) {
  const text = prompt(bytes, piiCount, bytes);
  const r = redactor.redact(text);
  const redactUs = usPerCall(() => redactor.redact(text), calls);
  const baselineUs = usPerCall(() => text.replace(EMAIL_ONLY, '<EMAIL>'), calls);
  return {
    bytes: text.length,
    values: Object.values(r.counts).reduce((a, b) => a + b, 0),
    redactUs,
    baselineEmailOnlyUs: baselineUs,
    factor: round(redactUs / baselineUs, 1),
    mbPerSecond: round(text.length / redactUs, 1),
  };
}

const small = redactCase(1024, 3, 400);
const large = redactCase(16 * 1024, 40, 40);

// A model answer that echoes placeholders, restored as it streams.
const convo = redactor.redact(prompt(16 * 1024, 40, 7));
const placeholders = convo.map.entries().map((e) => e.placeholder);
let answer = '';
for (let i = 0; answer.length < 4096; i++)
  answer += `Sure, I updated ${placeholders[i % placeholders.length]} for you. `;
const chunks = answer.match(/[\s\S]{1,4}/g) ?? [];
const streamUs = usPerCall(() => {
  const s = new StreamRestorer(convo.map);
  for (const c of chunks) s.push(c);
  s.end();
}, 50);
const wholeUs = usPerCall(() => restore(answer, convo.map), 50);
const perChunkUs = round(streamUs / chunks.length, 3);

const result = {
  bench: 'policy',
  node: process.version,
  cpus: cpus().length,
  redact1k: { ...small, targetUs: 1000, pass: small.redactUs <= 1000 },
  redact16k: large,
  streamRestore: {
    answerBytes: answer.length,
    chunks: chunks.length,
    mapEntries: convo.map.size,
    perChunkUs,
    wholeAnswerRestoreUs: wholeUs,
    streamedTotalUs: streamUs,
    factor: round(streamUs / wholeUs, 1),
    targetPerChunkUs: 5,
    pass: perChunkUs <= 5,
  },
};
process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
