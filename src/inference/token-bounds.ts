/**
 * A sound lower bound on how many tokens a text encodes to, computed without tokenizing it (issue
 * #14 item 6): if no token of the tokenizer can stand for more than `maxTokenBytes` bytes of input,
 * a text of `b` UTF-8 bytes needs at least `ceil(b / maxTokenBytes)` tokens. That lets a server
 * refuse a prompt that cannot possibly fit the model's context in microseconds, where tokenizing a
 * few megabytes takes seconds.
 *
 * The bound is only claimed where it is provably true, from the structure of `tokenizer.json`:
 * a BPE model (each token is a vocabulary entry; unknown text cannot be fused into one `unk` token
 * covering an unbounded run: byte-level pre-tokenization with all 256 byte symbols in the vocabulary,
 * or `byte_fallback`), no normalizer that can shrink text (only `Prepend` and literal `Replace`s that
 * never shorten), and pre-tokenizers that only split or map bytes (none that drop characters).
 * Under byte-level pre-tokenization one vocabulary character is one input byte; otherwise a token
 * covers at most its string's UTF-8 length. Special added tokens are excluded because user text
 * never produces them (tokenizer.ts). Anything else (WordPiece's `[UNK]` for a whole word, Unigram,
 * NFKC, whitespace-dropping pre-tokenizers) gets `undefined`: callers then tokenize, off the event
 * loop, instead of guessing.
 */

interface AddedTokenJson {
  content?: unknown;
  special?: unknown;
}

type Json = Record<string, unknown>;

const asObject = (v: unknown): Json | undefined =>
  v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : undefined;

const utf8Length = (s: string): number => Buffer.byteLength(s, 'utf8');

/** Whether a normalizer can never make text shorter (in UTF-8 bytes). */
function nonShrinkingNormalizer(n: unknown): boolean {
  if (n === null || n === undefined) return true;
  const o = asObject(n);
  if (!o) return false;
  switch (o.type) {
    case 'Prepend':
      return true;
    case 'Replace': {
      const pattern = asObject(o.pattern);
      return (
        typeof pattern?.String === 'string' &&
        typeof o.content === 'string' &&
        utf8Length(o.content) >= utf8Length(pattern.String)
      );
    }
    case 'Sequence':
      return Array.isArray(o.normalizers) && o.normalizers.every(nonShrinkingNormalizer);
    default:
      return false;
  }
}

/**
 * Classifies a pre-tokenizer: 'byte-level' (maps each byte to one symbol), 'keeps' (splits or maps
 * without dropping characters), or undefined (may drop text, or unknown).
 */
function preTokenizerKind(p: unknown): 'byte-level' | 'keeps' | undefined {
  if (p === null || p === undefined) return 'keeps';
  const o = asObject(p);
  if (!o) return undefined;
  switch (o.type) {
    case 'ByteLevel':
      return 'byte-level';
    case 'Metaspace':
    case 'Digits':
      return 'keeps';
    case 'Split':
    case 'Punctuation':
      return o.behavior === 'Removed' || o.invert === true ? undefined : 'keeps';
    case 'Sequence': {
      if (!Array.isArray(o.pretokenizers)) return undefined;
      const kinds = o.pretokenizers.map(preTokenizerKind);
      if (kinds.some((k) => k === undefined)) return undefined;
      return kinds.includes('byte-level') ? 'byte-level' : 'keeps';
    }
    default:
      return undefined;
  }
}

/** GPT-2's byte-to-unicode table: the 256 symbols a byte-level vocabulary spells bytes with. */
function byteSymbols(): string[] {
  const out: string[] = [];
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    out.push(String.fromCodePoint(printable ? b : 256 + extra++));
  }
  return out;
}

/**
 * The most input bytes one token can stand for, or undefined when no sound bound is known (see the
 * module comment). `tokenizerJson` is the parsed `tokenizer.json`.
 */
export function maxBytesPerToken(tokenizerJson: unknown): number | undefined {
  const doc = asObject(tokenizerJson);
  const model = asObject(doc?.model);
  if (!doc || !model || model.type !== 'BPE') return undefined;
  const vocab = asObject(model.vocab);
  if (!vocab || !nonShrinkingNormalizer(doc.normalizer)) return undefined;
  const kind = preTokenizerKind(doc.pre_tokenizer);
  if (kind === undefined) return undefined;
  if (kind === 'byte-level') {
    if (!byteSymbols().every((s) => s in vocab)) return undefined;
  } else if (model.byte_fallback !== true) return undefined;

  const added = Array.isArray(doc.added_tokens) ? (doc.added_tokens as AddedTokenJson[]) : [];
  const special = new Set(added.filter((t) => t.special === true).map((t) => String(t.content)));
  let max = 1;
  for (const token of Object.keys(vocab)) {
    if (special.has(token)) continue;
    // Byte-level: one symbol is one byte. Otherwise the token's own UTF-8 length bounds what it covers.
    const bytes = kind === 'byte-level' ? [...token].length : utf8Length(token);
    if (bytes > max) max = bytes;
  }
  for (const t of added) {
    if (t.special !== true && typeof t.content === 'string') max = Math.max(max, utf8Length(t.content));
  }
  return max;
}

/** The fewest tokens `text` can encode to, given `maxTokenBytes` (see maxBytesPerToken). */
export function minTokens(text: string, maxTokenBytes: number): number {
  return Math.ceil(utf8Length(text) / maxTokenBytes);
}
