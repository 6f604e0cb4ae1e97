/**
 * Human durations for expiries and timeouts (`90s`, `30m`, `12h`, `365d`, `2w`, or a sum such as
 * `1d12h`), and expiry flags that take either a duration from now or an absolute ISO time. Small
 * enough that a dependency is not worth it; the grammar is strict so a typo is an error, not zero.
 */
import { UserError } from './errors.js';

const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
};

/** Milliseconds of a duration like `365d` or `1h30m`; throws UserError naming `what` when invalid. */
export function parseDuration(text: string, what = 'duration'): number {
  const s = text.trim();
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/gy;
  let total = 0;
  let matched = 0;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    total += Number(m[1]) * (UNIT_MS[m[2] ?? ''] ?? Number.NaN);
    matched = re.lastIndex;
  }
  if (s === '' || matched !== s.length || !Number.isFinite(total) || total <= 0) {
    throw new UserError(`invalid ${what} "${text}"`, {
      code: 'E_DURATION',
      suggestion: 'use a number with a unit: ms, s, m, h, d or w (e.g. 90s, 12h, 365d, 1d12h)',
    });
  }
  return total;
}

/** An expiry flag: a duration from `now`, or an absolute ISO 8601 time in the future. */
export function parseExpiry(text: string, now: Date, what = '--expires'): Date {
  if (/^\d{4}-\d\d-\d\d/.test(text.trim())) {
    const t = Date.parse(text);
    if (Number.isNaN(t)) throw new UserError(`invalid ${what} time "${text}"`, { code: 'E_DURATION' });
    if (t <= now.getTime()) {
      throw new UserError(`${what} ${text} is in the past`, {
        code: 'E_DURATION',
        suggestion: 'give a future time or a duration such as 365d',
      });
    }
    return new Date(t);
  }
  return new Date(now.getTime() + parseDuration(text, what));
}
