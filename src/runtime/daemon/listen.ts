/**
 * The site daemon's listen address: `host:port` as `--listen` and a declaration's `runtime.listen`
 * write it. Parsed in the CLI before detaching, so a typo fails there and not in the log.
 */
import { UserError } from '../../foundation/errors.js';

const LISTEN_RE = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]*):([0-9]{1,5})$/;

/** `host:port` (port 0 = any free port); an empty host means 127.0.0.1. */
export function parseListen(text: string, what = '--listen'): { host: string; port: number } {
  const m = LISTEN_RE.exec(text.trim());
  const port = m ? Number(m[2]) : Number.NaN;
  if (!m || !(port >= 0 && port <= 65535)) {
    throw new UserError(`${what}: "${text}" is not host:port`, {
      code: 'E_LISTEN',
      suggestion: 'Use e.g. 127.0.0.1:8080, 0.0.0.0:8080 (needs a token) or 127.0.0.1:0 for any free port.',
    });
  }
  const host = (m[1] ?? '').replace(/^\[(.*)\]$/, '$1') || '127.0.0.1';
  return { host, port };
}
