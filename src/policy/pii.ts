/**
 * PII detection for the site runtime's redaction (docs/running-sites.md, policy in docs/formats.md): finds the
 * spans of personal data in a prompt, each with its type, so redact.ts can replace them before
 * anything leaves the site. Owns the built-in detectors, the policy's named custom patterns and the
 * overlap resolution. Detectors favour precision where a checksum or a format exists, because a
 * false positive changes what the models see:
 *
 * - email: `local@domain.tld` (letters-only TLD of 2-24 chars, no leading/trailing dot in local part).
 * - phone: only numbers FORMATTED like phone numbers, validated per country by libphonenumber-js
 *   (the length and prefix rules of Google's libphonenumber metadata):
 *     1. international: `+<country code>` then digit groups (single space, dot or dash between
 *        groups, one parenthesized group allowed), e.g. `+44 20 7946 0958`, `+1 (415) 555-2671`;
 *     2. North American: `(415) 555-2671`, `415-555-2671`, `415.555.2671`, `415 555 2671`,
 *        optionally with a leading `1-`/`1 `, valid as a US or CA number;
 *     3. trunk-prefixed national: starts with `0` (or `(0…)`), at least two groups with one kind
 *        of separator (the area code may be set off by another: `070-123 45 67`), at least 9
 *        digits, e.g. `020 7946 0958`, `030 12345678`, `06-12345678`, valid in one of the
 *        policy's `phoneRegions` (default DEFAULT_PHONE_REGIONS).
 *   A bare run of digits (an order or invoice number) is never a phone; dates (`2024-01-15`,
 *   `01.02.2024`) and prices fail validation. A trailing group that makes a number invalid is
 *   dropped (`+1 415 555 2671 2024` finds the phone, not the year).
 * - card: 13-19 digits, unseparated or in a printed card layout (4-4-4-4, 4-4-4-4-3, Amex 4-6-5,
 *   Diners 4-6-4, …) with one kind of separator (space or dash), first digit 2-6 (the payment-card
 *   industries), Luhn-valid. A Luhn-invalid 16-digit number is not a card, and neither is a
 *   Luhn-valid part of a longer card-shaped number.
 * - iban: country code + check digits + BBAN, printed with or without single spaces, valid per
 *   ibantools (registry length, BBAN format, national check digits where defined, mod-97 = 1).
 * - ip: dotted-quad IPv4 without leading zeros (not part of a longer dotted number such as
 *   `1.2.3.4.5` or a `v1.2.3.4` version), and IPv6 valid per node:net with at least two groups.
 * - national_id: US SSN `ddd-dd-dddd` (or spaces) excluding never-issued ranges (area 000, 666,
 *   900-999; group 00; serial 0000) and two well-known advertising numbers; UK National Insurance
 *   numbers (`AB 12 34 56 C`, valid prefix letters); and a generic rule: an identifier of 5-20
 *   letters/digits/dashes with at least 4 digits right after a label such as "passport number",
 *   "national id", "tax id", "SSN" or "driver's license no." (only the identifier is redacted; a
 *   bare "ID #" or "order id" is not such a label, so order numbers stay).
 * - custom: each policy pattern (its regex and flags); zero-length matches are ignored.
 *
 * Overlaps are resolved deterministically: the longest span wins; equal lengths go by detector
 * rank (iban, card, custom patterns in policy order, email, national_id, phone, ip); then the
 * earlier start. Accepted spans never overlap and are returned in text order.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { electronicFormatIBAN, isValidIBAN } from 'ibantools';
import { isValidPhoneNumber, type CountryCode } from 'libphonenumber-js/max';
import type { BuiltinDetector, RedactionPattern } from './schema.js';

export interface PiiSpan {
  /** Detector name: a built-in detector or a custom pattern's name. */
  type: string;
  start: number;
  end: number;
  value: string;
}

export interface DetectorConfig {
  detectors: readonly BuiltinDetector[];
  patterns?: readonly RedactionPattern[];
  /** Regions whose national phone formats count (default DEFAULT_PHONE_REGIONS). */
  phoneRegions?: readonly string[];
}

/** Regions whose trunk-prefixed national phone formats are recognized when the policy names none. */
export const DEFAULT_PHONE_REGIONS: readonly CountryCode[] = [
  'GB',
  'IE',
  'DE',
  'AT',
  'CH',
  'FR',
  'BE',
  'NL',
  'LU',
  'IT',
  'ES',
  'PT',
  'SE',
  'FI',
  'PL',
  'CZ',
  'AU',
  'NZ',
  'JP',
  'IN',
  'ZA',
];

/** Lower rank wins a tie in length. Custom patterns sit between the checksum detectors and the rest. */
const BUILTIN_RANK: Record<BuiltinDetector, number> = {
  iban: 0,
  card: 1,
  email: 1000,
  national_id: 1001,
  phone: 1002,
  ip: 1003,
};
const CUSTOM_RANK_BASE = 2;

interface Candidate extends PiiSpan {
  rank: number;
}

// ---------------------------------------------------------------------------------------------
// Checksums and validators (exported for tests and for generating valid test data).

/** Luhn (mod 10) check over a string of digits. */
export function luhnValid(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return false;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return digits.length > 0 && sum % 10 === 0;
}

const SSN_ADVERTISING = new Set(['078051120', '219099999']);

/** US SSN ranges the SSA never issues. */
export function isValidSsn(area: string, group: string, serial: string): boolean {
  const a = Number(area);
  if (a === 0 || a === 666 || a >= 900) return false;
  if (group === '00' || serial === '0000') return false;
  return !SSN_ADVERTISING.has(`${area}${group}${serial}`);
}

// ---------------------------------------------------------------------------------------------
// Detectors. Each returns candidates; overlap resolution happens once, in detect().

const EMAIL_RE =
  /(?<![\w.%+-])[A-Za-z0-9](?:[A-Za-z0-9._%+-]{0,62}[A-Za-z0-9_%+-])?@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])/g;

function findEmails(text: string, out: Candidate[]): void {
  for (const m of text.matchAll(EMAIL_RE)) {
    // `a..b@x.com` is not an address; the local part may not hold consecutive dots.
    if (m[0].slice(0, m[0].indexOf('@')).includes('..')) continue;
    push(out, 'email', m.index, m[0], BUILTIN_RANK.email);
  }
}

/** Digit groups joined by single spaces or dashes; cards are carved out of these runs. */
const DIGIT_RUN_RE = /(?<![\p{L}\p{N}_]|\d[.,])\d+(?:[ -]\d+)*(?![\p{L}\p{N}_]|[.,]\d)/gu;

/** Group lengths cards are printed in (Visa/Mastercard/Discover/JCB 4-4-4-4, Amex 4-6-5, Diners 4-6-4, …). */
const CARD_LAYOUTS = new Set(['4-4-4-4', '4-6-5', '4-6-4', '4-4-4-4-3', '4-4-4-3', '4-4-5', '4-4-4-1']);

function isCardShaped(groups: readonly string[]): boolean {
  const n = groups.reduce((a, g) => a + g.length, 0);
  if (n < 13 || n > 19) return false;
  return groups.length === 1 || CARD_LAYOUTS.has(groups.map((g) => g.length).join('-'));
}

function isCard(digits: string): boolean {
  return /^[2-6]/.test(digits) && luhnValid(digits);
}

/**
 * A digit run that is card-shaped as a whole is a card exactly when it passes the checks, so a
 * Luhn-invalid number is never rescued by a lucky sub-range. Only a run that is not card-shaped
 * (a card followed by `12/26`'s `12`, an order number before a card) is searched for a card-shaped,
 * single-separator range of whole groups, the longest first.
 */
function findCards(text: string, out: Candidate[]): void {
  for (const m of text.matchAll(DIGIT_RUN_RE)) {
    const run = m[0];
    const parts = run.split(/([ -])/);
    const groups: { digits: string; start: number; sep: string | undefined }[] = [];
    let off = 0;
    for (let i = 0; i < parts.length; i += 2) {
      const digits = parts[i] ?? '';
      groups.push({ digits, start: off, sep: parts[i - 1] });
      off += digits.length + (parts[i + 1]?.length ?? 0);
    }
    const wholeSeps = new Set(groups.slice(1).map((g) => g.sep));
    if (wholeSeps.size <= 1 && isCardShaped(groups.map((g) => g.digits))) {
      if (isCard(groups.map((g) => g.digits).join(''))) push(out, 'card', m.index, run, BUILTIN_RANK.card);
      continue;
    }
    let best: { start: number; end: number } | undefined;
    for (let i = 0; i < groups.length; i++) {
      let sep: string | undefined;
      let count = 0;
      for (let j = i; j < groups.length; j++) {
        const g = groups[j]!;
        if (j > i) {
          if (sep === undefined) sep = g.sep;
          else if (g.sep !== sep) break;
        }
        count += g.digits.length;
        if (count > 19) break;
        const slice = groups.slice(i, j + 1).map((x) => x.digits);
        if (!isCardShaped(slice) || !isCard(slice.join(''))) continue;
        const start = groups[i]!.start;
        const end = g.start + g.digits.length;
        if (!best || end - start > best.end - best.start) best = { start, end };
      }
    }
    if (best) push(out, 'card', m.index + best.start, run.slice(best.start, best.end), BUILTIN_RANK.card);
  }
}

const IBAN_START_RE = /(?<![\p{L}\p{N}_])[A-Za-z]{2}\d{2}(?=[ ]?[A-Za-z0-9])/gu;

function findIbans(text: string, out: Candidate[]): void {
  for (const m of text.matchAll(IBAN_START_RE)) {
    // Grow the candidate over alphanumerics and single spaces, trying every end that is not inside
    // a word; the longest valid IBAN wins (IBANs are 15-34 characters).
    let i = m.index + 4;
    let chars = 4;
    let best: number | undefined;
    while (i < text.length && chars < 34) {
      const c = text[i]!;
      if (c === ' ' && /[A-Za-z0-9]/.test(text[i + 1] ?? '')) {
        i++;
        continue;
      }
      if (!/[A-Za-z0-9]/.test(c)) break;
      i++;
      chars++;
      if (chars >= 15 && !/[\p{L}\p{N}_]/u.test(text[i] ?? '')) {
        const candidate = electronicFormatIBAN(text.slice(m.index, i));
        if (candidate && isValidIBAN(candidate)) best = i;
      }
    }
    if (best !== undefined) push(out, 'iban', m.index, text.slice(m.index, best), BUILTIN_RANK.iban);
  }
}

const IPV4_RE =
  /(?<![\p{L}\p{N}_.]|\d\.)(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\p{L}\p{N}_]|\.\d)/gu;
// Bounded repetitions only: an unbounded `[hex:]*:[hex:]*` backtracks quadratically on long input.
const IPV6_CANDIDATE_RE =
  /(?<![\p{L}\p{N}_:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){1,7}(?:\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})?(?![\p{L}\p{N}_:]|\.\d)/gu;

function findIps(text: string, out: Candidate[]): void {
  for (const m of text.matchAll(IPV4_RE)) {
    if (isIPv4(m[0])) push(out, 'ip', m.index, m[0], BUILTIN_RANK.ip);
  }
  for (const m of text.matchAll(IPV6_CANDIDATE_RE)) {
    const v = m[0];
    // Two or more non-empty groups, so `::`, `::1`-style fragments and `a::` in code stay untouched.
    const groups = v.split(':').filter((g) => g !== '');
    if (groups.length >= 2 && /\d/.test(v) && isIPv6(v)) push(out, 'ip', m.index, v, BUILTIN_RANK.ip);
  }
}

const SSN_RE = /(?<![\p{L}\p{N}_-])(\d{3})([- ])(\d{2})\2(\d{4})(?![\p{L}\p{N}_]|-\d)/gu;
const NINO_RE =
  /(?<![\p{L}\p{N}_])([A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]) ?(\d{2}) ?(\d{2}) ?(\d{2}) ?([A-D])(?![\p{L}\p{N}_])/gu;
const NINO_BAD_PREFIX = new Set(['BG', 'GB', 'NK', 'KN', 'TN', 'NT', 'ZZ']);
const ID_LABEL_RE =
  /\b(?:national (?:id|identity|insurance)(?: card)?(?: number| no\.?| #)?|identity (?:card |document )?(?:number|no\.?)|(?:national|citizen|personal) id(?: number| no\.?| #)?|passport(?: number| no\.?| #)?|tax (?:id|identification number|number)|tin|ssn|social security(?: number| no\.?)?|personal (?:id|identity|identification) (?:number|no\.?)|driver'?s licen[cs]e(?: number| no\.?| #)?)\s*(?:is|:|=|#)?\s*([A-Za-z0-9][A-Za-z0-9-]{3,18}[A-Za-z0-9])(?![\p{L}\p{N}_])/dgiu;

function findNationalIds(text: string, out: Candidate[]): void {
  for (const m of text.matchAll(SSN_RE)) {
    if (isValidSsn(m[1]!, m[3]!, m[4]!)) push(out, 'national_id', m.index, m[0], BUILTIN_RANK.national_id);
  }
  for (const m of text.matchAll(NINO_RE)) {
    if (!NINO_BAD_PREFIX.has(m[1]!)) push(out, 'national_id', m.index, m[0], BUILTIN_RANK.national_id);
  }
  for (const m of text.matchAll(ID_LABEL_RE)) {
    const value = m[1]!;
    const at = m.indices?.[1]?.[0];
    if (at === undefined || (value.match(/\d/g)?.length ?? 0) < 4) continue;
    push(out, 'national_id', at, value, BUILTIN_RANK.national_id);
  }
}

// Every group after the first needs a separator, so matching stays linear (no nested `(\d+)+`).
const INTL_PHONE_RE =
  /(?<![\p{L}\p{N}_+])\+\d{1,3}(?:[ .-]?\(\d{1,4}\))?[ .-]?\d{1,14}(?:[ .-]\d{1,14}){0,6}(?![\p{L}\p{N}_])/gu;
const NANP_PHONE_RE =
  /(?<![\p{L}\p{N}_+]|\d[ .-])(?:1[ .-])?(?:\([2-9]\d{2}\) ?|[2-9]\d{2}[ .-])[2-9]\d{2}[ .-]\d{4}(?![\p{L}\p{N}_]|[ .-]\d)/gu;
const TRUNK_PHONE_RE =
  /(?<![\p{L}\p{N}_+]|\d[ .-])(?:\(0\d{1,5}\)|0\d{1,5})(?:[ .-]\d{2,8}){1,4}(?![\p{L}\p{N}_])/gu;

/** The candidate and its prefixes ending at a group boundary, longest first. */
function shrinking(value: string): string[] {
  const out = [value];
  let v = value;
  for (;;) {
    const cut = v.search(/[ .-](?:\(\d+\)|\d+)$/);
    if (cut <= 0) return out;
    v = v.slice(0, cut);
    out.push(v);
  }
}

/** One kind of separator, except that the area code may be set off by another (`070-123 45 67`). */
function consistentSeparators(value: string): boolean {
  const seps = value.replace(/^\(0\d+\)/, '0').match(/[ .-]/g) ?? [];
  return new Set(seps.slice(1)).size <= 1;
}

function findPhones(text: string, regions: readonly CountryCode[], out: Candidate[]): void {
  for (const m of text.matchAll(INTL_PHONE_RE)) {
    const ok = shrinking(m[0]).find((v) => (v.match(/\d/g)?.length ?? 0) >= 7 && isValidPhoneNumber(v));
    if (ok) push(out, 'phone', m.index, ok, BUILTIN_RANK.phone);
  }
  for (const m of text.matchAll(NANP_PHONE_RE)) {
    if (isValidPhoneNumber(m[0], 'US') || isValidPhoneNumber(m[0], 'CA')) {
      push(out, 'phone', m.index, m[0], BUILTIN_RANK.phone);
    }
  }
  for (const m of text.matchAll(TRUNK_PHONE_RE)) {
    const ok = shrinking(m[0]).find(
      (v) =>
        /[ .-]/.test(v) &&
        consistentSeparators(v) &&
        (v.match(/\d/g)?.length ?? 0) >= 9 &&
        regions.some((r) => isValidPhoneNumber(v, r)),
    );
    if (ok) push(out, 'phone', m.index, ok, BUILTIN_RANK.phone);
  }
}

function push(out: Candidate[], type: string, start: number, value: string, rank: number): void {
  if (value.length === 0) return;
  out.push({ type, start, end: start + value.length, value, rank });
}

/** Longest first, then rank, then earlier start; greedy non-overlapping selection. */
export function resolveOverlaps<T extends PiiSpan & { rank: number }>(candidates: readonly T[]): PiiSpan[] {
  const sorted = [...candidates].sort(
    (a, b) => b.end - b.start - (a.end - a.start) || a.rank - b.rank || a.start - b.start,
  );
  const taken: PiiSpan[] = [];
  for (const c of sorted) {
    if (taken.some((t) => c.start < t.end && t.start < c.end)) continue;
    taken.push({ type: c.type, start: c.start, end: c.end, value: c.value });
  }
  return taken.sort((a, b) => a.start - b.start);
}

interface CompiledPattern {
  name: string;
  re: RegExp;
  rank: number;
}

/** Detectors compiled once per policy (regexes and region list), reused for every request. */
export class PiiDetector {
  private readonly builtins: ReadonlySet<BuiltinDetector>;
  private readonly patterns: CompiledPattern[];
  private readonly regions: readonly CountryCode[];

  constructor(config: DetectorConfig) {
    this.builtins = new Set(config.detectors);
    this.patterns = (config.patterns ?? []).map((p, i) => ({
      name: p.name,
      re: new RegExp(p.regex, `${(p.flags ?? '').replace(/[gy]/g, '')}g`),
      rank: CUSTOM_RANK_BASE + i,
    }));
    this.regions = (config.phoneRegions ?? DEFAULT_PHONE_REGIONS) as readonly CountryCode[];
  }

  /** Every PII span in `text`, non-overlapping, in text order. */
  detect(text: string): PiiSpan[] {
    const out: Candidate[] = [];
    const on = (d: BuiltinDetector) => this.builtins.has(d);
    if (on('email')) findEmails(text, out);
    if (on('card')) findCards(text, out);
    if (on('iban')) findIbans(text, out);
    if (on('ip')) findIps(text, out);
    if (on('national_id')) findNationalIds(text, out);
    if (on('phone')) findPhones(text, this.regions, out);
    for (const p of this.patterns) {
      for (const m of text.matchAll(p.re)) push(out, p.name, m.index, m[0], p.rank);
    }
    return resolveOverlaps(out);
  }
}

export function detectPii(text: string, config: DetectorConfig): PiiSpan[] {
  return new PiiDetector(config).detect(text);
}
