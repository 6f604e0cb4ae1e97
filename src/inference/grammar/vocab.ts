/**
 * The tokenizer's vocabulary as xgrammar's `TokenizerInfo` wants it: every token's string by id
 * (as stored in tokenizer.json), the vocabulary type that says how to turn those strings into
 * bytes (`byte_level`: GPT-2's byte-to-unicode map, which the fixture models' byte-level BPE
 * uses; `byte_fallback`: SentencePiece `<0xAB>` tokens; `raw` otherwise), and whether the
 * tokenizer prepends a space (Metaspace).
 *
 * Special tokens (BOS, EOS, chat markers) are given as empty strings: xgrammar never allows a
 * token whose text is empty, so `<|im_start|>` cannot appear inside a JSON string even though its
 * literal characters would match; end-of-sequence comes back through the stop-token ids only.
 * Ids the model's logits have beyond the tokenizer (padding) are empty too.
 */
import type { TextTokenizer } from '../tokenizer.js';

export interface TokenizerVocab {
  encoded: string[];
  vocabType: 'byte_level' | 'byte_fallback' | 'raw';
  prependSpace: boolean;
}

interface TokenizerJson {
  model?: { vocab?: Record<string, number> | [string, number][] };
  decoder?: { type?: string; decoders?: { type?: string }[]; prepend_scheme?: string } | null;
  pre_tokenizer?: { type?: string; prepend_scheme?: string; add_prefix_space?: boolean } | null;
  added_tokens?: { id: number; content: string; special?: boolean }[];
}

function decoderTypes(json: TokenizerJson): string[] {
  const d = json.decoder;
  if (!d) return [];
  return [d.type ?? '', ...(d.decoders ?? []).map((x) => x.type ?? '')];
}

/** The vocabulary of `tokenizer` padded to `vocabSize` entries (see the module comment). */
export function tokenizerVocab(tokenizer: TextTokenizer, vocabSize: number): TokenizerVocab {
  const json = tokenizer.definition.json as TokenizerJson;
  const encoded: string[] = new Array<string>(Math.max(vocabSize, tokenizer.vocabSize)).fill('');
  const vocab = json.model?.vocab ?? {};
  // Unigram models store [piece, score] pairs in id order; BPE/WordPiece a piece → id map.
  if (Array.isArray(vocab)) vocab.forEach(([piece], id) => (encoded[id] = piece));
  else
    for (const [piece, id] of Object.entries(vocab)) if (id >= 0 && id < encoded.length) encoded[id] = piece;
  for (const t of json.added_tokens ?? []) {
    if (t.id >= 0 && t.id < encoded.length) encoded[t.id] = t.special === true ? '' : t.content;
  }
  const types = decoderTypes(json);
  const vocabType = types.includes('ByteLevel')
    ? 'byte_level'
    : types.includes('ByteFallback')
      ? 'byte_fallback'
      : 'raw';
  const metaspace = json.pre_tokenizer?.type === 'Metaspace' || types.includes('Metaspace');
  const scheme = json.pre_tokenizer?.prepend_scheme ?? json.decoder?.prepend_scheme;
  const prependSpace = metaspace && scheme !== 'never' && json.pre_tokenizer?.add_prefix_space !== false;
  return { encoded: encoded.slice(0, vocabSize), vocabType, prependSpace };
}
