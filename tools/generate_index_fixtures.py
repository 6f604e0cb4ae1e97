"""Regenerates the retrieval fixtures of issue #20 (tools/README.md "Retrieval fixtures").

Writes artifacts/corpus/kiosk/ (the knowledge base), artifacts/corpus/kiosk.queries.jsonl (the
labelled queries: each with the ids of its relevant documents) and artifacts/models/embedder/
(model.onnx, tokenizer.json, tokenizer_config.json, config.json): a byte-level BPE and an LSA
sentence encoder derived from the corpus (tools/fixtures/embedder.py). Deterministic: two runs give
identical files. Takes a second or two.

    /usr/bin/python3 tools/generate_index_fixtures.py --out artifacts
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import onnx  # noqa: E402

from fixtures import bpe, embedder, kb_corpus  # noqa: E402

VOCAB = 1536
DIM = 64
MAX_TOKENS = 256


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="artifacts")
    args = ap.parse_args()
    corpus_dir = os.path.join(args.out, "corpus", "kiosk")
    shutil.rmtree(corpus_dir, ignore_errors=True)
    counts = kb_corpus.generate(corpus_dir, os.path.join(args.out, "corpus", "kiosk.queries.jsonl"))
    texts = [t.lower() for t in kb_corpus.corpus_texts(corpus_dir)]
    vocab, merges = bpe.train_bpe(texts, VOCAB)
    tok = bpe.ByteLevelBPE(vocab, merges)
    table = embedder.lsa_table([tok.encode(t) for t in texts], len(vocab), DIM)
    model_dir = os.path.join(args.out, "models", "embedder")
    os.makedirs(model_dir, exist_ok=True)
    onnx.save(embedder.encoder_graph(table), os.path.join(model_dir, "model.onnx"))
    tj = tok.to_tokenizer_json()
    tj["normalizer"] = {"type": "Lowercase"}  # the encoder was derived from lower-cased text
    bpe.write_json(os.path.join(model_dir, "tokenizer.json"), tj)
    bpe.write_json(os.path.join(model_dir, "tokenizer_config.json"), bpe.tokenizer_config(MAX_TOKENS))
    config = {
        "name": "kiosk-lsa-embedder",
        "model_type": "edgectl-lsa-encoder",
        "hidden_size": DIM,
        "max_position_embeddings": MAX_TOKENS,
        "vocab_size": len(vocab),
        "pooling": "mean",
        "normalized": True,
    }
    bpe.write_json(os.path.join(model_dir, "config.json"), config)
    print(json.dumps({**counts, "vocab": len(vocab), "dim": DIM, "model_bytes": os.path.getsize(os.path.join(model_dir, "model.onnx"))}))


if __name__ == "__main__":
    main()
