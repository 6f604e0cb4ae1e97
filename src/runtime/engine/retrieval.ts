/**
 * The retrieval step of a site request (RAG; docs/running-sites.md "Retrieval (RAG)"). A chat
 * request that asks for it (`edgectl: {retrieval: {index, k}}`) or that a policy retrieval rule
 * matches (src/policy/retrieval-policy.ts) gets the top `k` passages of that site index (hybrid:
 * BM25 and dense fused by reciprocal rank, src/index/reader.ts), queried with the last user
 * message. The passages reach the model through its own chat template as a context message
 * (`contextMessage`): appended to the chat's leading system message, or a new system message put
 * first. Because it is an ordinary message, the request's redaction (chat-prompt.ts) covers it like
 * the user's text: PII in a retrieved passage is replaced by placeholders before any token leaves
 * the site and restored in the answer. The response lists the passage ids used
 * (`edgectl.citations`) and how retrieval went (`edgectl.retrieval`). Passages that match a policy
 * block rule are withheld first (retrieval-screen.ts): never attached, never cited, counted by rule.
 *
 * Freshness: an index older than the policy's `maxAge` (now minus its newest document time) is
 * served with a warning, or refused with 503 `index_stale` when the policy says `stale: refuse`.
 * Only chats retrieve; a completion (`/v1/completions`) asking for retrieval is a 400.
 */
import { parseDuration } from '../../foundation/duration.js';
import type { RetrievalOutcome } from '../../feedback/accumulator.js';
import { badRequest, HttpError } from '../../http/http.js';
import type { QueryPassage } from '../../index/index.js';
import { matchRetrievalRule, MAX_RETRIEVAL_K } from '../../policy/retrieval-policy.js';
import type { ChatMessage } from '../serve/openai.js';
import type { LoadedGeneration } from './generation.js';
import { screenPassages, type WithheldByRule } from './retrieval-screen.js';
import { indexAgeSeconds, type ServedIndex } from './site-indexes.js';
import type { EngineRequest } from './types.js';

export const DEFAULT_RETRIEVAL_K = 4;

/** 503 `index_stale`: the policy refuses retrieval from an index past its staleness budget. */
export class StaleIndexError extends HttpError {
  /** What feedback counts for the request: a refused retrieval. */
  readonly outcome: RetrievalOutcome = { ms: 0, passages: 0, refused: true };

  constructor(warning: string) {
    super(503, `retrieval refused: ${warning}`, 'index_stale', 'server_error', {}, 'edgectl.retrieval');
  }
}

/** What a request asks for in `edgectl.retrieval`. */
export interface RetrievalRequest {
  index: string;
  k?: number | undefined;
}

/** `edgectl.retrieval` of a response. */
export interface RetrievalInfo {
  index: string;
  /** `index/<name>@<version>` served (absent for a hand-assembled generation). */
  ref?: string;
  /** Why it retrieved: `request` or `policy:<rule name>`. */
  source: string;
  k: number;
  /** Passages attached (at most k; fewer when the index had fewer or the context budget was hit). */
  passages: number;
  /** Passages retrieved but left out because they did not fit the context budget. */
  dropped?: number;
  /** Passages retrieved but withheld because they match a policy block rule (never attached or cited). */
  withheld?: number;
  /** The block rules that withheld them, by name, with how many each (never the passages' text). */
  withheldBy?: WithheldByRule[];
  ms: number;
  /** Seconds since the index's newest document. */
  ageSeconds: number;
  stale: boolean;
  warning?: string;
}

export interface Retrieved {
  messages: ChatMessage[];
  citations: string[];
  info: RetrievalInfo;
  outcome: RetrievalOutcome;
}

/** The header of the context message; passages follow as `[<id>] <text>`. */
export const CONTEXT_HEADER =
  "Answer using the site's documents below when they are relevant, and cite them by their [id].";

function contentText(m: ChatMessage): string {
  if (m.content === null || m.content === undefined) return '';
  return typeof m.content === 'string' ? m.content : m.content.map((p) => p.text).join('');
}

/**
 * The passages as the context text the model sees: one line, `[<id>] <text>` after the header.
 * One line because transcript-style templates (the built-in one, the fixture models') end a turn
 * at a newline; whitespace inside a passage is collapsed for the same reason.
 */
export function contextText(passages: readonly Pick<QueryPassage, 'id' | 'text'>[]): string {
  return [CONTEXT_HEADER, ...passages.map(passageLine)].join(' ');
}

/** One passage as the model sees it in the context (and as block rules screen it). */
export function passageLine(p: Pick<QueryPassage, 'id' | 'text'>): string {
  return `[${p.id}] ${p.text.replace(/\s+/g, ' ').trim()}`;
}

/** The chat with the context: joined to a leading system message, or a new one put first. */
export function contextMessage(messages: readonly ChatMessage[], context: string): ChatMessage[] {
  const first = messages[0];
  if (first && (first.role === 'system' || first.role === 'developer')) {
    return [{ ...first, content: `${contentText(first)} ${context}` }, ...messages.slice(1)];
  }
  return [{ role: 'system', content: context }, ...messages];
}

function lastUserText(messages: readonly ChatMessage[]): string {
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i] as ChatMessage;
    if (m.role === 'user') return contentText(m);
  }
  return '';
}

function pick(
  g: LoadedGeneration,
  req: EngineRequest,
  query: string,
): { index: string; k: number; source: string } | undefined {
  if (req.retrieval) {
    const k = req.retrieval.k ?? DEFAULT_RETRIEVAL_K;
    return { index: req.retrieval.index, k: Math.min(k, MAX_RETRIEVAL_K), source: 'request' };
  }
  const rule = matchRetrievalRule(g.policy.retrieval, query);
  return rule ? { index: rule.index, k: rule.k, source: `policy:${rule.name}` } : undefined;
}

/** Share of the model's context the retrieved passages may take; the chat and the answer need the rest. */
export const CONTEXT_SHARE = 0.5;

/**
 * The best-ranked passages whose context text fits CONTEXT_SHARE of the model's context, in rank
 * order (a passage that does not fit ends the list: a lower-ranked one is never preferred to it).
 */
function fitToBudget(g: LoadedGeneration, passages: readonly QueryPassage[]): QueryPassage[] {
  let left = Math.floor(g.maxPositions * CONTEXT_SHARE) - g.tokenizer.encode(CONTEXT_HEADER).length;
  const out: QueryPassage[] = [];
  for (const p of passages) {
    left -= g.tokenizer.encode(contextText([p]).slice(CONTEXT_HEADER.length)).length;
    if (left < 0) break;
    out.push(p);
  }
  return out;
}

function unknownIndex(g: LoadedGeneration, name: string): HttpError {
  const known = g.indexes.names;
  return new HttpError(
    404,
    `The index "${name}" is not served at this site; ${known.length > 0 ? `available: ${known.join(', ')}` : 'it serves no index'} (assignments.indexes)`,
    'index_not_found',
    'not_found_error',
    {},
    'edgectl.retrieval.index',
  );
}

/** Staleness against the policy's budget: undefined when fresh (or no budget). */
function staleness(g: LoadedGeneration, served: ServedIndex, now: number): string | undefined {
  const budget = g.policy.retrieval?.maxAge;
  if (budget === undefined) return undefined;
  const age = indexAgeSeconds(served.reader, now);
  const max = parseDuration(budget) / 1000;
  return age > max
    ? `index ${served.name} is ${age}s old (newest document ${served.reader.manifest.newestDocumentTime}), past the policy's maxAge of ${budget}`
    : undefined;
}

/**
 * The retrieval step: undefined when the request does not retrieve; the chat with its context,
 * the citations and the feedback outcome otherwise. Throws HttpError for an unknown index (404),
 * a completion asking for retrieval (400) or a stale index the policy refuses (503).
 */
export async function retrieve(
  g: LoadedGeneration,
  req: EngineRequest,
  now: number = Date.now(),
): Promise<Retrieved | undefined> {
  if (!('messages' in req.prompt)) {
    if (req.retrieval) {
      throw badRequest(
        'edgectl.retrieval: retrieval attaches passages to a chat; use /v1/chat/completions',
        'retrieval_needs_chat',
        'edgectl.retrieval',
      );
    }
    return undefined;
  }
  const messages = req.prompt.messages;
  const query = lastUserText(messages);
  const chosen = pick(g, req, query);
  if (!chosen) return undefined;
  const served = g.indexes.get(chosen.index);
  if (!served) throw unknownIndex(g, chosen.index);
  const warning = staleness(g, served, now);
  const base = { index: served.name, ...(served.ref ? { ref: served.ref } : {}), source: chosen.source };
  const ageSeconds = indexAgeSeconds(served.reader, now);
  if (warning && g.policy.retrieval?.stale === 'refuse') throw new StaleIndexError(warning);
  const t0 = performance.now();
  const result = query.trim() === '' ? { passages: [] } : await served.reader.query(query, { k: chosen.k });
  const ms = performance.now() - t0;
  // Withheld before the budget, so a passage that may not be sent takes no room from one that may.
  const screened = screenPassages(result.passages, g.blockRules, passageLine);
  const passages = fitToBudget(g, screened.kept);
  const citations = passages.map((p) => p.id);
  const withheld = screened.count > 0 ? { withheld: screened.count, withheldBy: screened.withheld } : {};
  const info: RetrievalInfo = {
    ...base,
    k: chosen.k,
    passages: passages.length,
    ...(passages.length < screened.kept.length ? { dropped: screened.kept.length - passages.length } : {}),
    ...withheld,
    ms: Math.round(ms * 100) / 100,
    ageSeconds,
    stale: warning !== undefined,
    ...(warning ? { warning } : {}),
  };
  const outcome: RetrievalOutcome = {
    ms,
    passages: passages.length,
    ...(warning ? { stale: true } : {}),
    ...(screened.count > 0 ? { withheld: screened.withheld } : {}),
  };
  if (passages.length === 0) return { messages, citations, info, outcome };
  return { messages: contextMessage(messages, contextText(passages)), citations, info, outcome };
}
