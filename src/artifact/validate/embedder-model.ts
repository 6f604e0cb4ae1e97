/**
 * Validation of embedder models (`kind: model`, `role: embedder`; docs/formats.md "Index
 * artifacts"): the sentence encoder an index is built with and a site embeds queries with. It is a
 * model artifact so it is published, signed, chunked and synced like every model, but its graph is
 * an encoder, not a decoder: it is checked by opening it exactly as the index engine will
 * (src/index/embedder.ts: config.json `hidden_size` and `max_position_embeddings`, tokenizer.json,
 * model.onnx with `input_ids`/`attention_mask` in and `sentence_embedding` or `last_hidden_state`
 * out). Its `meta` records the dimension, context and the file-list digest indexes pin.
 */
import { Embedder } from '../../index/index.js';
import { requireFiles, type LocalValidateContext, type Meta } from './common.js';

export async function validateEmbedderModel(ctx: LocalValidateContext): Promise<Meta> {
  requireFiles(ctx, 'embedder model', ['config.json', 'tokenizer.json', 'model.onnx']);
  const embedder = await Embedder.open(ctx.dir);
  try {
    return {
      role: 'embedder',
      dim: embedder.info.dim,
      maxTokens: embedder.info.maxTokens,
      filesDigest: embedder.info.digest,
    };
  } finally {
    await embedder.close();
  }
}
