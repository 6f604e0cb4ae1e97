/**
 * Validation of store keys, shared by both backends so a key that one accepts the other accepts
 * too. Keys are slash-separated relative paths; `..`, `.`, empty segments, absolute paths,
 * backslashes and control characters are refused, so a key can never escape the registry
 * directory. Segments may not start with a dot: the fs backend keeps its temp and lock files
 * under dot-directories, and this keeps them out of the key space.
 */
import { UserError } from '../foundation/errors.js';

export function checkKey(key: string): string {
  const bad = (why: string) =>
    new UserError(`invalid registry key ${JSON.stringify(key)}: ${why}`, {
      code: 'E_KEY_PATH',
      details: { key },
    });
  if (key.length === 0) throw bad('empty');
  if (key.length > 1024) throw bad('longer than 1024 characters');
  if (key.startsWith('/')) throw bad('absolute path');
  // eslint-disable-next-line no-control-regex
  if (/[\\\u0000-\u001f\u007f]/.test(key)) throw bad('backslash or control character');
  for (const seg of key.split('/')) {
    if (seg === '') throw bad('empty path segment');
    if (seg === '.' || seg === '..') throw bad('`.` or `..` segment');
    if (seg.startsWith('.')) throw bad('segments may not start with a dot');
  }
  return key;
}

/** Prefixes for list(): like keys, but may be empty or end with `/` or a partial segment. */
export function checkPrefix(prefix: string): string {
  if (prefix === '') return prefix;
  checkKey(prefix.endsWith('/') ? prefix.slice(0, -1) : prefix);
  return prefix;
}

/** Code-unit order, the order S3 lists keys in for ASCII keys; both backends sort with it. */
export function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
