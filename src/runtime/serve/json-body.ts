/**
 * The site's JSON request bodies, parsed where a big one cannot stall the daemon (issue #14
 * item 6): decoding and parsing a 4 MiB body costs the event loop hundreds of milliseconds on a
 * busy machine, so bodies above INLINE_MAX_BODY_BYTES are collected as raw bytes (no decoding on
 * the event loop) and parsed in the prompt worker (prompt-pool.ts); small ones are parsed inline.
 * Both keep fastify's protection against prototype poisoning (secure-json-parse's rule: a
 * `__proto__` key, or a `constructor` key holding `prototype`, is a 400), using its cheap
 * pre-check so ordinary bodies pay only one regex scan.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { HttpError } from '../../http/http.js';

/** Bodies up to this size are parsed on the event loop (well under a millisecond). */
export const INLINE_MAX_BODY_BYTES = 64 * 1024;

const PROTO_KEY =
  /"(?:_|\\u005[Ff])(?:_|\\u005[Ff])(?:p|\\u0070)(?:r|\\u0072)(?:o|\\u006[Ff])(?:t|\\u0074)(?:o|\\u006[Ff])(?:_|\\u005[Ff])(?:_|\\u005[Ff])"\s*:/;
const CONSTRUCTOR_KEY =
  /"(?:c|\\u0063)(?:o|\\u006[Ff])(?:n|\\u006[Ee])(?:s|\\u0073)(?:t|\\u0074)(?:r|\\u0072)(?:u|\\u0075)(?:c|\\u0063)(?:t|\\u0074)(?:o|\\u006[Ff])(?:r|\\u0072)"\s*:/;

const invalid = (message: string): HttpError => new HttpError(400, message, 'invalid_json');

/** JSON.parse with the poisoning checks; a 400 HttpError for anything that is not acceptable JSON. */
export function parseJsonBody(text: string): unknown {
  if (text.length === 0) throw invalid('the body is empty: send a JSON body');
  try {
    if (!PROTO_KEY.test(text) && !CONSTRUCTOR_KEY.test(text)) return JSON.parse(text);
    // The pre-check also matches such text inside strings: only real keys are refused.
    return JSON.parse(text, (key, value: unknown) => {
      if (key === '__proto__') throw invalid('the body has a forbidden "__proto__" key');
      if (key === 'constructor' && value !== null && typeof value === 'object' && 'prototype' in value) {
        throw invalid('the body has a forbidden "constructor.prototype" key');
      }
      return value;
    });
  } catch (err) {
    if (err instanceof HttpError) throw err;
    throw invalid(`invalid JSON body (${(err as Error).message}): send a valid JSON body`);
  }
}

/** Replaces fastify's JSON parser: inline for small bodies, `offThread` for big ones. */
export function installJsonBodyParser(
  app: FastifyInstance,
  offThread: (body: Buffer) => Promise<unknown>,
): void {
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser(
    'application/json',
    { parseAs: 'buffer' },
    async (_req: FastifyRequest, body: Buffer) =>
      body.length <= INLINE_MAX_BODY_BYTES ? parseJsonBody(body.toString('utf8')) : offThread(body),
  );
}
