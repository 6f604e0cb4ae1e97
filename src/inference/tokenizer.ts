/**
 * Text ⇄ token ids for a model directory's `tokenizer.json`, and streaming detokenization.
 *
 * Tokenization itself is delegated to `@huggingface/tokenizers` (Hugging Face's pure-JS port,
 * the same code transformers.js uses, ~8 kB, no native parts); we chose it over
 * `@huggingface/transformers`' AutoTokenizer because that package also pulls in onnxruntime-web
 * and a second ONNX runtime. This module adds what generation needs on top: file loading with
 * clear errors, and `StreamDetokenizer`, which turns a growing list of token ids into text deltas
 * that never end in a partial character (byte-level BPE can split one UTF-8 character across
 * tokens; the decoder then yields U+FFFD until the rest arrives).
 *
 * Control tokens never come from text (issue #14 item 7): Hugging Face tokenizers match every added
 * token's literal text, so a user typing `<|endoftext|>` would get the end-of-text id and could end
 * or forge turns. `encode` treats special tokens' text as ordinary text (what `split_special_tokens`
 * does in transformers), so only code that inserts ids itself (a chat template, the server) can
 * produce them; and an encoding that still yields more special ids than the post-processor adds is
 * refused, whatever the tokenizer's model does. The JS library has no switch for this, so
 * `textOnly` rebuilds its added-token splitters without the special tokens (checked at load, so a
 * library upgrade that renames its internals fails loudly instead of silently re-enabling them).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { UserError } from '../foundation/errors.js';
import { maxBytesPerToken } from './token-bounds.js';

export const TOKENIZER_FILE = 'tokenizer.json';
export const TOKENIZER_CONFIG_FILE = 'tokenizer_config.json';

export interface EncodeOptions {
  /** Add the special tokens the tokenizer's post-processor defines (e.g. BOS). Default true. */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  /** Drop special tokens (BOS, EOS, padding) from the text. Default true. */
  skipSpecialTokens?: boolean;
}

function readJson(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new UserError(`${path}: cannot read file (${(err as NodeJS.ErrnoException).code ?? String(err)})`, {
      code: 'E_READ',
      suggestion: 'A model directory needs tokenizer.json (Hugging Face tokenizers format).',
    });
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new UserError(`${path}: invalid JSON (${(err as Error).message})`, {
      code: 'E_TOKENIZER',
      suggestion: 'Re-export the tokenizer with tokenizer.save_pretrained().',
    });
  }
}

/** The library's private fields `textOnly` rewrites (@huggingface/tokenizers 0.2). */
interface LibraryInternals {
  added_tokens: { content: string; special: boolean; normalized: boolean }[];
  added_tokens_map: Map<string, unknown>;
  splitter_unnormalized: { split(text: string): string[] };
  splitter_normalized: { split(text: string): string[] };
  normalizer: ((text: string) => string) | null;
}

/** Makes `tokenizer.encode` treat special tokens' text as text (see the module comment). */
function textOnly(tokenizer: Tokenizer, source: string): void {
  const t = tokenizer as unknown as Partial<LibraryInternals>;
  if (
    !Array.isArray(t.added_tokens) ||
    !(t.added_tokens_map instanceof Map) ||
    typeof t.splitter_unnormalized?.split !== 'function' ||
    typeof t.splitter_normalized?.split !== 'function'
  ) {
    throw new Error(
      `${source}: @huggingface/tokenizers internals changed; cannot keep control tokens out of user text`,
    );
  }
  const Splitter = t.splitter_unnormalized.constructor as new (words: string[]) => {
    split(text: string): string[];
  };
  const normalize = t.normalizer ?? null;
  const unnormalized: string[] = [];
  const normalized: string[] = [];
  for (const token of t.added_tokens) {
    const form = token.normalized && normalize ? normalize(token.content) : undefined;
    if (token.special) {
      t.added_tokens_map.delete(token.content);
      if (form !== undefined) t.added_tokens_map.delete(form);
    } else if (form !== undefined) normalized.push(form);
    else unnormalized.push(token.content);
  }
  t.splitter_unnormalized = new Splitter(unnormalized);
  t.splitter_normalized = new Splitter(normalized);
}

export class TextTokenizer {
  private readonly tokenizer: Tokenizer;
  /** Number of ids (base vocabulary plus added tokens): the highest id + 1. */
  readonly vocabSize: number;
  private readonly specialIds: ReadonlySet<number>;
  /** Special ids the post-processor adds around any text, by addSpecialTokens. */
  private readonly templateSpecials: Readonly<Record<'with' | 'without', number>>;
  /**
   * The most input bytes one token can stand for, when provable (token-bounds.ts): a text of b
   * bytes needs at least ceil(b / maxTokenBytes) tokens. Undefined for tokenizers without a bound.
   */
  readonly maxTokenBytes: number | undefined;

  private constructor(
    tokenizer: Tokenizer,
    source: string,
    /** What the tokenizer was built from, so a worker thread can build the same one. */
    readonly definition: { json: object; config: object },
  ) {
    this.tokenizer = tokenizer;
    textOnly(tokenizer, source);
    this.maxTokenBytes = maxBytesPerToken(definition.json);
    let max = -1;
    for (const id of tokenizer.get_vocab(true).values()) if (id > max) max = id;
    if (max < 0) {
      throw new UserError(`${source}: the tokenizer has an empty vocabulary`, { code: 'E_TOKENIZER' });
    }
    this.vocabSize = max + 1;
    const special = new Set<number>();
    for (const [id, token] of tokenizer.get_added_tokens_decoder()) if (token.special) special.add(id);
    this.specialIds = special;
    this.templateSpecials = {
      with: this.countSpecial(tokenizer.encode('', { add_special_tokens: true }).ids),
      without: this.countSpecial(tokenizer.encode('', { add_special_tokens: false }).ids),
    };
  }

  private countSpecial(ids: readonly number[]): number {
    let n = 0;
    for (const id of ids) if (this.specialIds.has(id)) n++;
    return n;
  }

  /** Loads `<dir>/tokenizer.json` (and `tokenizer_config.json` when present). */
  static load(dir: string): TextTokenizer {
    const file = join(dir, TOKENIZER_FILE);
    const configFile = join(dir, TOKENIZER_CONFIG_FILE);
    const json = readJson(file);
    const config = existsSync(configFile) ? readJson(configFile) : {};
    return TextTokenizer.fromJson(json, config, file);
  }

  static fromJson(
    tokenizerJson: unknown,
    tokenizerConfig: unknown = {},
    source = TOKENIZER_FILE,
  ): TextTokenizer {
    if (tokenizerJson === null || typeof tokenizerJson !== 'object' || !('model' in tokenizerJson)) {
      throw new UserError(`${source}: not a Hugging Face tokenizer (no "model" field)`, {
        code: 'E_TOKENIZER',
        suggestion: 'Use the tokenizer.json written by tokenizers / transformers save_pretrained().',
      });
    }
    try {
      const config = (tokenizerConfig ?? {}) as object;
      return new TextTokenizer(new Tokenizer(tokenizerJson, config), source, { json: tokenizerJson, config });
    } catch (err) {
      if (err instanceof UserError) throw err;
      throw new UserError(`${source}: cannot build the tokenizer (${(err as Error).message})`, {
        code: 'E_TOKENIZER',
        suggestion: 'Check that tokenizer.json was written by a recent Hugging Face tokenizers version.',
      });
    }
  }

  /**
   * Encodes user text. Special tokens' text is encoded as text (never as the control token), and
   * only the post-processor's own special tokens (e.g. BOS) appear in the result.
   */
  encode(text: string, opts: EncodeOptions = {}): number[] {
    const add = opts.addSpecialTokens ?? true;
    const ids = this.tokenizer.encode(text, { add_special_tokens: add }).ids;
    if (this.countSpecial(ids) > this.templateSpecials[add ? 'with' : 'without']) {
      // Only reachable with a tokenizer whose model itself spells a control token from text.
      throw new UserError('the text encodes to a control token with this tokenizer', {
        code: 'E_CONTROL_TOKEN',
        suggestion: 'Remove control-token text (such as <|endoftext|>) from the prompt.',
      });
    }
    return ids;
  }

  decode(ids: readonly number[], opts: DecodeOptions = {}): string {
    if (ids.length === 0) return ''; // the library refuses an empty list
    return this.tokenizer.decode([...ids], {
      skip_special_tokens: opts.skipSpecialTokens ?? true,
      clean_up_tokenization_spaces: false,
    });
  }

  /** The id of a token string (e.g. "<|endoftext|>"), if it is in the vocabulary. */
  tokenId(token: string): number | undefined {
    return this.tokenizer.token_to_id(token);
  }

  isSpecial(id: number): boolean {
    return this.specialIds.has(id);
  }

  /**
   * A streaming detokenizer. Pass the prompt's ids as `context` so the first generated tokens are
   * decoded in context (decoders such as Metaspace drop a leading space at the start of a text).
   */
  streamDecoder(context: readonly number[] = [], opts: DecodeOptions = {}): StreamDetokenizer {
    return new StreamDetokenizer((ids) => this.decode(ids, opts), context);
  }
}

/** How many context tokens to keep before the first generated one (TGI and vLLM use 5–6). */
const CONTEXT_TOKENS = 6;

/**
 * Incremental detokenization (the prefix/read-offset method of TGI and vLLM): decode a short
 * window before and after the new token and emit the difference, but only once it no longer ends
 * in U+FFFD, i.e. once every character it contains is complete. Work per token is bounded by the
 * window, not by the length of the text.
 */
export class StreamDetokenizer {
  private readonly ids: number[];
  private prefixOffset: number;
  private readOffset: number;

  constructor(
    private readonly decode: (ids: readonly number[]) => string,
    context: readonly number[] = [],
  ) {
    this.ids = context.slice(Math.max(0, context.length - CONTEXT_TOKENS));
    this.prefixOffset = 0;
    this.readOffset = this.ids.length;
  }

  /** Adds one token; returns the newly completed text (possibly empty). */
  push(id: number): string {
    this.ids.push(id);
    return this.emit(false);
  }

  /** Returns whatever is still held back (an incomplete character decodes as U+FFFD). */
  flush(): string {
    return this.emit(true);
  }

  private emit(force: boolean): string {
    if (this.readOffset >= this.ids.length) return '';
    const before = this.decode(this.ids.slice(this.prefixOffset, this.readOffset));
    const after = this.decode(this.ids.slice(this.prefixOffset));
    if (!force && (after.length <= before.length || after.endsWith('\uFFFD'))) return '';
    const delta = after.startsWith(before)
      ? after.slice(before.length)
      : after.slice(Math.min(before.length, after.length));
    this.prefixOffset = this.readOffset;
    this.readOffset = this.ids.length;
    // Keep the window short: drop ids nobody will decode again.
    if (this.prefixOffset > 64) {
      this.ids.splice(0, this.prefixOffset);
      this.readOffset -= this.prefixOffset;
      this.prefixOffset = 0;
    }
    return delta;
  }
}
