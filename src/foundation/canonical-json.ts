/**
 * RFC 8785 (JCS) canonical JSON, the one serialization that is signed (DSSE payloads) and hashed
 * (state digests). It wraps the `canonicalize` package so the rest of the code never deals with its
 * CommonJS typing quirk: the package's .d.ts declares an ES default export, but under NodeNext the
 * CommonJS module itself is the default import at runtime.
 */
import canonicalizeModule from 'canonicalize';

type Canonicalize = (input: unknown) => string | undefined;
const moduleValue = canonicalizeModule as unknown as Canonicalize & { default?: Canonicalize };
const canonicalizeFn: Canonicalize = moduleValue.default ?? moduleValue;

/** Canonical JSON text of a value; throws on values JSON cannot represent (undefined, functions). */
export function canonicalJson(value: unknown): string {
  const text = canonicalizeFn(value);
  if (text === undefined) throw new TypeError('value has no JSON representation');
  return text;
}

/** Canonical JSON as UTF-8 bytes. */
export function canonicalJsonBytes(value: unknown): Buffer {
  return Buffer.from(canonicalJson(value), 'utf8');
}
