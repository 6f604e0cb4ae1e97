/**
 * The bytes and text of single token ids, for logprobs (OpenAI reports each token as a string
 * plus its UTF-8 `bytes`, because a token may hold part of a character). For a byte-level BPE
 * vocabulary (GPT-2, SmolLM, Qwen: each vocabulary symbol stands for one byte) the bytes are read
 * from the vocabulary entry through GPT-2's byte-to-symbol table, so a token holding half of a
 * multi-byte character gets exactly its bytes; for other tokenizers they are the UTF-8 of the
 * token decoded alone. The text is those bytes decoded, with U+FFFD for an incomplete character.
 * Built once per tokenizer (a WeakMap), lazily per id.
 */
import type { TextTokenizer } from './tokenizer.js';

export interface TokenPiece {
  text: string;
  bytes: number[];
}

/** GPT-2's byte-to-unicode table, inverted: symbol -> byte. */
function symbolBytes(): Map<string, number> {
  const out = new Map<string, number>();
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    out.set(String.fromCodePoint(printable ? b : 256 + extra++), b);
  }
  return out;
}

function isByteLevel(json: object): boolean {
  const decoder = (json as { decoder?: { type?: unknown; decoders?: { type?: unknown }[] } }).decoder;
  if (decoder?.type === 'ByteLevel') return true;
  return decoder?.type === 'Sequence' && (decoder.decoders ?? []).some((d) => d.type === 'ByteLevel');
}

class TokenPieces {
  private readonly cache = new Map<number, TokenPiece>();
  private readonly byId: Map<number, string> | undefined;
  private readonly symbols = symbolBytes();
  private readonly utf8 = new TextDecoder('utf-8');

  constructor(private readonly tokenizer: TextTokenizer) {
    const json = tokenizer.definition.json as { model?: { vocab?: unknown } };
    const vocab = json.model?.vocab;
    if (isByteLevel(json) && vocab !== null && typeof vocab === 'object' && !Array.isArray(vocab)) {
      this.byId = new Map();
      for (const [piece, id] of Object.entries(vocab as Record<string, unknown>))
        if (typeof id === 'number') this.byId.set(id, piece);
    }
  }

  piece(id: number): TokenPiece {
    let p = this.cache.get(id);
    if (p === undefined) {
      p = this.compute(id);
      this.cache.set(id, p);
    }
    return p;
  }

  private compute(id: number): TokenPiece {
    const symbols = this.byId?.get(id);
    if (symbols !== undefined) {
      const bytes = [...symbols].map((s) => this.symbols.get(s));
      if (bytes.every((b) => b !== undefined)) {
        return { text: this.utf8.decode(Uint8Array.from(bytes)), bytes };
      }
    }
    // Added tokens, other tokenizer families: the token decoded on its own.
    const text = this.tokenizer.decode([id], { skipSpecialTokens: false });
    return { text, bytes: [...Buffer.from(text, 'utf8')] };
  }
}

const pieces = new WeakMap<TextTokenizer, TokenPieces>();

/** The text and bytes of token `id` under `tokenizer` (see the module comment). */
export function tokenPiece(tokenizer: TextTokenizer, id: number): TokenPiece {
  let p = pieces.get(tokenizer);
  if (p === undefined) {
    p = new TokenPieces(tokenizer);
    pieces.set(tokenizer, p);
  }
  return p.piece(id);
}
