/**
 * Client traffic for the quickstart: workers send prompts (artifacts/prompts/support.jsonl) to each
 * site's OpenAI-compatible `/v1/completions`, naming the adapter by name (`draft:support`, never a
 * version), so whichever adapter version the fleet gives a site serves it. The sites' feedback on
 * this traffic is what the rollouts are judged on. The statistics come from the `edgectl` field
 * of each response: route, drafted and accepted tokens, verify rounds.
 */
import { readFileSync } from 'node:fs';

export interface TrafficStats {
  requests: number;
  /** Non-2xx answers and failed connections (429s counted apart). */
  errors: number;
  rejected: number;
  byRoute: Record<string, number>;
  completionTokens: number;
  draftTokens: number;
  acceptedTokens: number;
  verifyRounds: number;
  /** Tokens produced by speculative answers (what the verify rounds bought). */
  speculativeTokens: number;
  lastError: string | null;
}

export function emptyTrafficStats(): TrafficStats {
  return {
    requests: 0,
    errors: 0,
    rejected: 0,
    byRoute: {},
    completionTokens: 0,
    draftTokens: 0,
    acceptedTokens: 0,
    verifyRounds: 0,
    speculativeTokens: 0,
    lastError: null,
  };
}

export interface CompletionRequest {
  model: string;
  prompt: string;
  maxTokens: number;
  temperature: number;
  /** Ask for a route (`cloud` for the cloud-only comparison); the policy may refuse. */
  route?: 'edge' | 'speculative' | 'cloud';
}

interface CompletionBody {
  usage?: { completion_tokens?: number };
  edgectl?: {
    route?: string;
    stats?: { draftTokens?: number; acceptedTokens?: number; verifyRounds?: number };
  };
}

/** Reads the `prompt` field of every line of a JSONL file. */
export function readPrompts(file: string): string[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => (JSON.parse(l) as { prompt: string }).prompt);
}

/**
 * A request still unanswered after this long counts as an error. A backstop only: 24 tokens take
 * seconds even on a loaded machine, and a slow answer must not turn into an error the quickstart
 * reports (its test expects none).
 */
const REQUEST_BACKSTOP_MS = 300_000;

/** One request; adds what it did to `stats`. */
export async function sendCompletion(
  siteUrl: string,
  req: CompletionRequest,
  stats: TrafficStats,
  signal?: AbortSignal,
): Promise<void> {
  stats.requests++;
  let res: Response;
  try {
    res = await fetch(`${siteUrl}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: req.model,
        prompt: req.prompt,
        max_tokens: req.maxTokens,
        temperature: req.temperature,
        ...(req.route ? { edgectl: { route: req.route } } : {}),
      }),
      signal: signal
        ? AbortSignal.any([signal, AbortSignal.timeout(REQUEST_BACKSTOP_MS)])
        : AbortSignal.timeout(REQUEST_BACKSTOP_MS),
    });
  } catch (err) {
    if (signal?.aborted) {
      stats.requests--;
      return;
    }
    stats.errors++;
    stats.lastError = err instanceof Error ? err.message : String(err);
    return;
  }
  if (res.status === 429) {
    stats.rejected++;
    await res.arrayBuffer();
    return;
  }
  if (!res.ok) {
    stats.errors++;
    stats.lastError = `${res.status}: ${(await res.text()).slice(0, 200)}`;
    return;
  }
  const body = (await res.json()) as CompletionBody;
  const route = body.edgectl?.route ?? 'unknown';
  stats.byRoute[route] = (stats.byRoute[route] ?? 0) + 1;
  const tokens = body.usage?.completion_tokens ?? 0;
  stats.completionTokens += tokens;
  const s = body.edgectl?.stats;
  stats.draftTokens += s?.draftTokens ?? 0;
  stats.acceptedTokens += s?.acceptedTokens ?? 0;
  stats.verifyRounds += s?.verifyRounds ?? 0;
  if (route === 'speculative') stats.speculativeTokens += tokens;
}

export interface TrafficOptions {
  sites: { name: string; url: string }[];
  prompts: string[];
  model: string;
  maxTokens: number;
  temperature: number;
  /** Requests in flight per site. */
  concurrency: number;
}

export interface Traffic {
  readonly stats: TrafficStats;
  /** Stops sending (aborting requests in flight) and returns the totals. */
  stop(): Promise<TrafficStats>;
}

export function startTraffic(opts: TrafficOptions): Traffic {
  const stats = emptyTrafficStats();
  const stopping = new AbortController();
  const workers: Promise<void>[] = [];
  opts.sites.forEach((site, s) => {
    for (let w = 0; w < opts.concurrency; w++) {
      workers.push(
        (async () => {
          // Each worker starts at another prompt so the sites see the same mix, not the same order.
          let i = s * 7 + w * 13;
          while (!stopping.signal.aborted) {
            const prompt = opts.prompts[i++ % opts.prompts.length] ?? '';
            const before = stats.errors + stats.rejected;
            await sendCompletion(
              site.url,
              { model: opts.model, prompt, maxTokens: opts.maxTokens, temperature: opts.temperature },
              stats,
              stopping.signal,
            );
            // Back off after a failure (a site restarting, a queue full) instead of spinning.
            if (stats.errors + stats.rejected > before) await delay(250, stopping.signal);
          }
        })(),
      );
    }
  });
  return {
    stats,
    async stop() {
      // Requests in flight are aborted, not counted: the totals are of answered requests.
      stopping.abort();
      await Promise.all(workers);
      return stats;
    },
  };
}

function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        resolve();
      },
      { once: true },
    );
  });
}
