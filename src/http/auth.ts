/**
 * Bearer-token access for edgectl's HTTP servers (the site runtime and the verifier; issue #14
 * item 10): a server bound to a non-loopback address must be started with a token, every request
 * except the open probe paths must carry `Authorization: Bearer <token>`, and the comparison is
 * constant-time (both sides hashed first, so neither content nor length leaks). Loopback binds may
 * run without a token (a developer machine); with one, they check it too.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { UserError } from '../foundation/errors.js';
import { HttpError } from './http.js';

export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h) || h === '::ffff:127.0.0.1';
}

export function sameToken(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/** Refuses to serve a non-loopback address without a token; `how` says how to give one. */
export function requireTokenForHost(
  host: string,
  token: string | undefined,
  what: string,
  code: string,
  how: string,
): void {
  if (isLoopbackHost(host) || token) return;
  throw new UserError(
    `refusing to listen on ${host} without a bearer token: a non-loopback address exposes the ${what} to the network`,
    { code, suggestion: `${how}, or listen on 127.0.0.1 (the default).` },
  );
}

/** The 401 for a request without the right token, or undefined when it may pass. */
export function checkBearer(headers: IncomingHttpHeaders, token: string): HttpError | undefined {
  const m = /^Bearer\s+(.+)$/i.exec(headers.authorization ?? '');
  if (m && sameToken(m[1] as string, token)) return undefined;
  return new HttpError(
    401,
    m ? 'invalid bearer token' : 'missing bearer token: send Authorization: Bearer <token>',
    'invalid_api_key',
    'invalid_request_error',
    { 'www-authenticate': 'Bearer' },
  );
}

/** Installs the token check on every route but `openPaths` (liveness/readiness probes). */
export function installBearerAuth(app: FastifyInstance, token: string, openPaths: ReadonlySet<string>): void {
  app.addHook('onRequest', async (req, reply) => {
    const path = req.url.split('?')[0] ?? req.url;
    if (openPaths.has(path)) return;
    const refused = checkBearer(req.headers, token);
    if (refused) {
      return reply.status(401).headers(refused.headers).send(refused.body());
    }
  });
}

/** Headers a client sends with `token` (none without one). */
export function bearerHeaders(token: string | undefined): Record<string, string> {
  return token ? { authorization: `Bearer ${token}` } : {};
}
