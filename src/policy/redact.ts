/**
 * Reversible redaction (docs/running-sites.md, policy in docs/formats.md): replaces each PII value in a prompt
 * with a stable placeholder before anything leaves the site, and restores the values in what the
 * user sees, including in streamed output (StreamRestorer). Owns the placeholder form, the
 * RedactionMap (value <-> placeholder for one request or conversation, serializable so a
 * conversation's map survives across turns) and the streaming hold-back rule.
 *
 * Placeholders are `<TYPE_N>` (`<EMAIL_1>`, `<CARD_2>`, `<EMPLOYEE_ID_1>`): ASCII only, so a
 * byte-level BPE tokenizer splits them into a few common tokens, and delimited on both sides so
 * `<EMAIL_1>` followed by a digit never reads as `<EMAIL_10>`. The same value always gets the same
 * placeholder within a map (keyed by the exact text, so restoring reproduces it byte for byte).
 * Text that already looks like a placeholder is itself mapped (type `literal`) so a user's literal
 * `<EMAIL_1>` can never be restored into someone's address, and `restore(redact(x)) === x` always.
 */
import { z } from 'zod';
import { PiiDetector } from './pii.js';
import type { Policy } from './schema.js';

export interface RedactionEntry {
  placeholder: string;
  value: string;
  type: string;
}

/** The serialized form of a RedactionMap (for a conversation store); validated on load. */
export const redactionMapSchema = z.strictObject({
  version: z.literal(1),
  entries: z.array(
    z.strictObject({
      placeholder: z.string().regex(/^<[A-Z][A-Z0-9_]*_[1-9][0-9]*>$/),
      value: z.string(),
      type: z.string().min(1),
    }),
  ),
});
export type RedactionMapJson = z.infer<typeof redactionMapSchema>;

/** Placeholder grammar; restore() replaces only placeholders the map knows. */
export const PLACEHOLDER_RE = /<([A-Z][A-Z0-9_]*)_([1-9][0-9]*)>/g;

/** The pseudo-type of user text that already has a placeholder's shape. */
export const LITERAL_TYPE = 'literal';

export function placeholderTag(type: string): string {
  return type.toUpperCase().replace(/[^A-Z0-9_]/g, '_');
}

/**
 * value <-> placeholder for one request or conversation. Immutable from the outside: redact()
 * returns a new map that extends the one passed in, so a failed request never half-updates it.
 */
export class RedactionMap {
  private readonly byValue = new Map<string, RedactionEntry>();
  private readonly byPlaceholder = new Map<string, RedactionEntry>();
  private readonly counters = new Map<string, number>();

  constructor(entries: readonly RedactionEntry[] = []) {
    for (const e of entries) this.add(e);
  }

  static fromJSON(value: unknown): RedactionMap {
    const parsed = redactionMapSchema.parse(value);
    const map = new RedactionMap();
    for (const e of parsed.entries) {
      if (map.byValue.has(e.value) || map.byPlaceholder.has(e.placeholder)) {
        throw new TypeError(`redaction map: duplicate entry for ${e.placeholder}`);
      }
      map.add(e);
    }
    return map;
  }

  toJSON(): RedactionMapJson {
    return { version: 1, entries: this.entries() };
  }

  get size(): number {
    return this.byValue.size;
  }

  entries(): RedactionEntry[] {
    return [...this.byValue.values()].map((e) => ({ ...e }));
  }

  placeholderOf(value: string): string | undefined {
    return this.byValue.get(value)?.placeholder;
  }

  valueOf(placeholder: string): string | undefined {
    return this.byPlaceholder.get(placeholder)?.value;
  }

  /** A copy that redact() may extend. */
  clone(): RedactionMap {
    return new RedactionMap(this.entries());
  }

  /** The placeholder for `value`, minting `<TAG_n>` with the next free n for its type. */
  assign(value: string, type: string): string {
    const known = this.byValue.get(value);
    if (known) return known.placeholder;
    const tag = placeholderTag(type);
    let n = this.counters.get(tag) ?? 0;
    let placeholder: string;
    do placeholder = `<${tag}_${++n}>`;
    while (this.byPlaceholder.has(placeholder));
    this.add({ placeholder, value, type });
    return placeholder;
  }

  private add(e: RedactionEntry): void {
    this.byValue.set(e.value, { ...e });
    this.byPlaceholder.set(e.placeholder, { ...e });
    const m = /^<([A-Z][A-Z0-9_]*)_([1-9][0-9]*)>$/.exec(e.placeholder);
    if (m) this.counters.set(m[1]!, Math.max(this.counters.get(m[1]!) ?? 0, Number(m[2])));
  }
}

export interface RedactResult {
  /** The text with every detected value replaced by its placeholder. */
  text: string;
  /** The map extended with this text's values (the input map is not modified). */
  map: RedactionMap;
  /** Values replaced in this text, by detector type (occurrences, literals not counted). */
  counts: Record<string, number>;
}

/** A policy's redaction compiled once (detector regexes, regions), reused for every request. */
export class Redactor {
  private readonly detector: PiiDetector | undefined;

  constructor(policy: Pick<Policy, 'redaction'>) {
    const r = policy.redaction;
    this.detector =
      r && r.enabled !== false
        ? new PiiDetector({ detectors: r.detectors, patterns: r.patterns, phoneRegions: r.phoneRegions })
        : undefined;
  }

  get enabled(): boolean {
    return this.detector !== undefined;
  }

  redact(text: string, map: RedactionMap = new RedactionMap()): RedactResult {
    const next = map.clone();
    const counts: Record<string, number> = {};
    const spans = this.detector ? this.detector.detect(text) : [];
    // Placeholder-shaped literals are protected too (see the module comment); PII spans never
    // contain `<`, so the two sets cannot overlap except through a custom pattern, which then wins.
    const literals = [...text.matchAll(PLACEHOLDER_RE)]
      .map((m) => ({ type: LITERAL_TYPE, start: m.index, end: m.index + m[0].length, value: m[0] }))
      .filter((l) => !spans.some((s) => l.start < s.end && s.start < l.end));
    const all = [...spans, ...literals].sort((a, b) => a.start - b.start);
    let out = '';
    let at = 0;
    for (const s of all) {
      out += text.slice(at, s.start) + next.assign(s.value, s.type);
      at = s.end;
      if (s.type !== LITERAL_TYPE) counts[s.type] = (counts[s.type] ?? 0) + 1;
    }
    out += text.slice(at);
    return { text: out, map: next, counts };
  }
}

const redactors = new WeakMap<object, Redactor>();

/** Redactor for a policy object, compiled on first use and cached for the object's lifetime. */
export function redactorFor(policy: Pick<Policy, 'redaction'>): Redactor {
  let r = redactors.get(policy);
  if (!r) {
    r = new Redactor(policy);
    redactors.set(policy, r);
  }
  return r;
}

/** Replaces the policy's PII in `text` with placeholders from (an extension of) `map`. */
export function redact(
  text: string,
  policy: Pick<Policy, 'redaction'>,
  map: RedactionMap = new RedactionMap(),
): RedactResult {
  return redactorFor(policy).redact(text, map);
}

/** Puts the original values back; placeholders the map does not know are left as they are. */
export function restore(text: string, map: RedactionMap): string {
  if (map.size === 0) return text;
  return text.replace(PLACEHOLDER_RE, (p) => map.valueOf(p) ?? p);
}

/** Total of a counts record (redactions in one request). */
export function totalRedactions(counts: Record<string, number>): number {
  return Object.values(counts).reduce((a, b) => a + b, 0);
}

/**
 * Restores placeholders in streamed output. A chunk may end inside a placeholder (`…<EMA` then
 * `IL_1>…`), so the tail of the text that is still a proper prefix of one of the map's
 * placeholders is held back until it completes or becomes impossible; `end()` flushes it. The
 * concatenated output always equals `restore(whole text)`, and no emitted chunk ends in a
 * placeholder fragment. Only the map's placeholders are held: other `<…` text streams through.
 */
export class StreamRestorer {
  private readonly prefixes = new Set<string>();
  private readonly maxLen: number;
  private pending = '';

  constructor(private readonly map: RedactionMap) {
    let maxLen = 0;
    for (const e of map.entries()) {
      maxLen = Math.max(maxLen, e.placeholder.length);
      for (let i = 1; i < e.placeholder.length; i++) this.prefixes.add(e.placeholder.slice(0, i));
    }
    this.maxLen = maxLen;
  }

  /** Text that is safe to send now (may be empty). */
  push(chunk: string): string {
    const buf = this.pending + chunk;
    const hold = this.holdFrom(buf);
    this.pending = buf.slice(hold);
    return restore(buf.slice(0, hold), this.map);
  }

  /** Everything still held back, restored; call once when the stream ends. */
  end(): string {
    const rest = restore(this.pending, this.map);
    this.pending = '';
    return rest;
  }

  /** Start of the earliest suffix of `buf` that could still grow into a mapped placeholder. */
  private holdFrom(buf: string): number {
    for (let i = Math.max(0, buf.length - this.maxLen + 1); i < buf.length; i++) {
      if (buf.charCodeAt(i) === 60 /* < */ && this.prefixes.has(buf.slice(i))) return i;
    }
    return buf.length;
  }
}
