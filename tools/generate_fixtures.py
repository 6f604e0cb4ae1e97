#!/usr/bin/python3
"""Regenerates every committed fixture model: corpus, prompts, tokenizer, draft, verifier, adapters, tiny-hf.

Owns the pipeline and the on-disk layout under `--out` (normally `artifacts/`). Steps: seeded corpus
and held-out prompts -> byte-level BPE tokenizer -> verifier trained on general + support text ->
draft distilled from the verifier mostly on general text -> `support` LoRA distilled on support text
and `support-bad` LoRA trained on off-by-one targets -> ONNX exports, configs, PEFT adapters ->
tiny random Optimum-layout model -> agreement measurement -> golden values for the Node test ->
validation in Node (`npx vitest run test/fixtures`). Run with Debian's Python, which has torch:

    /usr/bin/python3 tools/generate_fixtures.py --out artifacts          # full (about 22 minutes)
    /usr/bin/python3 tools/generate_fixtures.py --out /tmp/fx --quick    # smoke run (about 1.5 minutes)
"""

from __future__ import annotations

import os

# OpenMP threads that spin while waiting starve each other on a shared 2-core machine.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import json
import shutil
import subprocess
import sys
import time

import numpy as np
import torch

from fixtures import agreement, bpe, corpus, export_onnx, families, lean_onnx, q4, tiny_hf
from fixtures.model import Decoder, ModelConfig, count_parameters, macs_per_token
from fixtures.safetensors_io import write_safetensors
from fixtures.train import Mixture, distill, new_lora, scaled, teacher_rollouts, train_lm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEED = 20240601
VOCAB = 1024
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
LORA_RANK, LORA_ALPHA, LORA_MAX_RANK = 8, 16, 16
DRAFT = ModelConfig(VOCAB, 128, 2, 4, 2, 256, lora_targets=LORA_TARGETS)
VERIFIER = ModelConfig(VOCAB, 256, 5, 8, 4, 640)
DRAFT_REF = "model/draft@1.0.0"

# The corpus (and so the tokenizer) is the same in both modes; --quick only trains briefly.
DIALOGUES = 3000
FULL = dict(verifier_steps=700, draft_steps=1700, lora_steps=260, batch=24, seq=128, eval_prompts=64, rollouts=1536)
QUICK = dict(verifier_steps=60, draft_steps=60, lora_steps=30, batch=16, seq=128, eval_prompts=16, rollouts=64)


def write_json(path: str, doc: object) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")


def write_jsonl(path: str, rows: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")


def write_yaml(path: str, fields: dict[str, str]) -> None:
    # Flat string fields only, so a hand-written emitter is exact and needs no PyYAML.
    with open(path, "w", encoding="utf-8") as f:
        for k, v in fields.items():
            f.write(f"{k}: {v}\n")


def hf_config(cfg: ModelConfig, role: str) -> dict:
    doc = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": cfg.hidden_size,
        "intermediate_size": cfg.intermediate_size,
        "num_hidden_layers": cfg.num_hidden_layers,
        "num_attention_heads": cfg.num_attention_heads,
        "num_key_value_heads": cfg.num_key_value_heads,
        "head_dim": cfg.head_dim,
        "hidden_act": "silu",
        "vocab_size": cfg.vocab_size,
        "max_position_embeddings": cfg.max_position_embeddings,
        "rope_theta": cfg.rope_theta,
        "rms_norm_eps": cfg.rms_norm_eps,
        "tie_word_embeddings": True,
        "bos_token_id": 0,
        "eos_token_id": 0,
        "torch_dtype": "float32",
        "use_cache": True,
        "edgectl": {"role": role},
    }
    if role == "draft":
        doc["lora"] = {"target_modules": cfg.lora_targets, "max_rank": LORA_MAX_RANK}
    return doc


def generation_config() -> dict:
    # stop_strings (Hugging Face's field): a transcript turn is one line, so a chat turn ends at the newline.
    return {"bos_token_id": 0, "eos_token_id": 0, "pad_token_id": 0, "do_sample": False, "max_new_tokens": 64, "stop_strings": ["\n"]}


def write_model_dir(out: str, name: str, role: str, model: Decoder, tok: bpe.ByteLevelBPE) -> None:
    d = os.path.join(out, "models", name)
    os.makedirs(d, exist_ok=True)
    # The draft runs at the site, where its passes are all per-kernel overhead: it gets the hand-built
    # graph (fixtures/lean_onnx.py). The verifier keeps the traced export, the baseline both
    # benchmark modes share.
    if role == "draft":
        lean_onnx.export(model, os.path.join(d, "model.onnx"), with_lora=True)
        # Its q4 variant (MatMulNBits, as onnx-community's q4 exports), chosen by artifact.yaml `dtype: q4`.
        q4.quantize_file(os.path.join(d, "model.onnx"), os.path.join(d, "model_q4.onnx"))
    else:
        export_onnx.export(model, os.path.join(d, "model.onnx"), with_lora=False)
    write_json(os.path.join(d, "config.json"), hf_config(model.cfg, role))
    write_json(os.path.join(d, "generation_config.json"), generation_config())
    bpe.write_json(os.path.join(d, "tokenizer.json"), tok.to_tokenizer_json())
    tok_cfg = {**bpe.tokenizer_config(model.cfg.max_position_embeddings), "chat_template": families.TRANSCRIPT_TEMPLATE}
    write_json(os.path.join(d, "tokenizer_config.json"), tok_cfg)
    write_yaml(os.path.join(d, "artifact.yaml"), {"kind": "model", "name": name, "version": "1.0.0", "role": role})


PEFT_PARENT = {m: "self_attn" for m in ("q_proj", "k_proj", "v_proj", "o_proj")} | {m: "mlp" for m in ("gate_proj", "up_proj", "down_proj")}


def write_adapter_dir(out: str, name: str, lora, description: str) -> None:
    d = os.path.join(out, "adapters", name)
    os.makedirs(d, exist_ok=True)
    tensors: dict[str, np.ndarray] = {}
    for key, (a, b) in lora.items():
        layer, module = key.split(".")
        prefix = f"base_model.model.model.layers.{layer}.{PEFT_PARENT[module]}.{module}"
        tensors[f"{prefix}.lora_A.weight"] = a.detach().numpy()
        tensors[f"{prefix}.lora_B.weight"] = b.detach().numpy()
    write_safetensors(os.path.join(d, "adapter_model.safetensors"), tensors, {"format": "pt"})
    write_json(
        os.path.join(d, "adapter_config.json"),
        {
            "peft_type": "LORA",
            "task_type": "CAUSAL_LM",
            "base_model_name_or_path": DRAFT_REF,
            "r": LORA_RANK,
            "lora_alpha": LORA_ALPHA,
            "lora_dropout": 0.0,
            "target_modules": LORA_TARGETS,
            "bias": "none",
            "fan_in_fan_out": False,
            "inference_mode": True,
            "init_lora_weights": True,
            "use_rslora": False,
            "modules_to_save": None,
            "revision": None,
        },
    )
    write_yaml(os.path.join(d, "artifact.yaml"), {"kind": "adapter", "name": name, "version": "1.0.0", "base": DRAFT_REF, "description": description})


def dir_size(path: str) -> int:
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs)


@torch.no_grad()
def golden(draft: Decoder, verifier: Decoder, tok: bpe.ByteLevelBPE, prompts: dict[str, list[str]], adapters: dict, texts: list[str]) -> dict:
    """Reference values the Node test reproduces with onnxruntime-node and @huggingface/tokenizers."""
    cases = []
    for domain in ("general", "support"):
        for text in prompts[domain][:2]:
            ids = tok.encode(text)
            entry: dict = {"domain": domain, "prompt": text, "ids": ids}
            vlogits, _ = verifier(torch.tensor([ids]))
            entry["verifier_last_logits_head"] = [round(float(v), 5) for v in vlogits[0, -1, :16]]
            entry["verifier_greedy"] = agreement.verifier_greedy(verifier, ids, 8)
            entry["draft_last_logits_head"] = {}
            for name, lora in [("base", None)] + list(adapters.items()):
                dlogits, _ = draft(torch.tensor([ids]), lora=lora)
                entry["draft_last_logits_head"][name] = [round(float(v), 5) for v in dlogits[0, -1, :16]]
            cases.append(entry)
    encodings = [{"text": t, "ids": tok.encode(t)} for t in texts]
    return {"lora_scale": LORA_ALPHA / LORA_RANK, "cases": cases, "encodings": encodings}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "artifacts"))
    ap.add_argument("--quick", action="store_true", help="tiny corpus and a few training steps (smoke test)")
    ap.add_argument("--no-check", action="store_true", help="skip the Node validation (vitest) at the end")
    ap.add_argument("--golden", default=None, help="where to write golden values (default: test/fixtures/models.golden.json for a full run into artifacts/, else <out>/golden.json)")
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads (1 is faster on a busy machine)")
    args = ap.parse_args()
    plan = QUICK if args.quick else FULL
    torch.set_num_threads(args.threads)
    torch.manual_seed(SEED)
    out = os.path.abspath(args.out)
    t_start = time.time()
    timings: dict[str, float] = {}

    def mark(stage: str, since: float) -> float:
        timings[stage] = round(time.time() - since, 1)
        print(f"== {stage}: {timings[stage]}s", flush=True)
        return time.time()

    t = time.time()
    texts = {d: corpus.make_corpus(d, DIALOGUES, SEED) for d in ("general", "support")}
    prompts = {d: corpus.make_prompts(d, 64, SEED + 1) for d in ("general", "support")}
    for sub in ("corpus", "prompts", "models", "adapters"):
        os.makedirs(os.path.join(out, sub), exist_ok=True)
    for d in ("general", "support"):
        write_jsonl(os.path.join(out, "corpus", f"{d}.jsonl"), [{"text": x} for x in texts[d]])
        write_jsonl(os.path.join(out, "prompts", f"{d}.jsonl"), [{"prompt": p} for p in prompts[d]])
    vocab, merges = bpe.train_bpe(texts["general"] + texts["support"], VOCAB)
    tok = bpe.ByteLevelBPE(vocab, merges)
    assert len(vocab) == VOCAB, f"corpus too small for {VOCAB} tokens ({len(vocab)})"
    eos = torch.tensor([0])
    streams = {d: torch.cat([torch.cat([eos, torch.tensor(tok.encode(x))]) for x in texts[d]]) for d in texts}
    print(f"tokens: general {len(streams['general'])}, support {len(streams['support'])}", flush=True)
    t = mark("corpus+tokenizer", t)

    verifier = Decoder(VERIFIER)
    both = Mixture([streams["general"], streams["support"]], [0.5, 0.5])
    train_lm(verifier, both, plan["verifier_steps"], plan["batch"], plan["seq"], 3e-3, SEED + 2, "verifier")
    t = mark("verifier", t)

    draft = Decoder(DRAFT)
    mostly_general = Mixture([streams["general"], streams["support"]], [0.98, 0.02])
    # Four fifths of the draft's windows are the verifier's own greedy output (from corpus prefixes,
    # never the held-out prompts): greedy speculative decoding only ever asks the draft to continue
    # that. Against half, with 1,700 steps each: agreement on the benchmark's traces 0.929 -> 0.934.
    rollouts = teacher_rollouts(verifier, mostly_general, plan["rollouts"], 32, plan["seq"], SEED + 9)
    t = mark("rollouts", t)
    draft_data = Mixture([streams["general"], streams["support"], rollouts], [0.196, 0.004, 0.8])
    distill(draft, verifier, draft_data, plan["draft_steps"], plan["batch"], plan["seq"], 4e-3, SEED + 3, "draft")
    t = mark("draft", t)

    support_only = Mixture([streams["support"]], [1.0])
    scale = LORA_ALPHA / LORA_RANK
    good = new_lora(draft, LORA_RANK, SEED + 4)
    distill(draft, verifier, support_only, plan["lora_steps"], plan["batch"], plan["seq"], 3e-3, SEED + 5, "support", lora=good, lora_scale=scale)
    bad = new_lora(draft, LORA_RANK, SEED + 6)
    distill(draft, verifier, support_only, plan["lora_steps"] // 2, plan["batch"], plan["seq"], 3e-3, SEED + 7, "support-bad", lora=bad, lora_scale=scale, shift_targets=1)
    t = mark("adapters", t)

    write_model_dir(out, "verifier", "verifier", verifier, tok)
    write_model_dir(out, "draft", "draft", draft, tok)
    write_adapter_dir(out, "support", good, "LoRA distilled from the verifier on support chats")
    write_adapter_dir(out, "support-bad", bad, "deliberately bad LoRA (trained on off-by-one targets)")
    tiny_dir = os.path.join(out, "models", "tiny-hf")
    os.makedirs(tiny_dir, exist_ok=True)
    tiny_params = tiny_hf.build(os.path.join(tiny_dir, "model.onnx"), SEED + 8)
    write_json(os.path.join(tiny_dir, "config.json"), tiny_hf.config(0))
    write_json(os.path.join(tiny_dir, "generation_config.json"), {"bos_token_id": 0, "eos_token_id": 0, "transformers_version": "4.42.3"})
    bpe.write_json(os.path.join(tiny_dir, "tokenizer.json"), tok.to_tokenizer_json())
    write_json(os.path.join(tiny_dir, "tokenizer_config.json"), bpe.tokenizer_config(2048))
    write_yaml(os.path.join(tiny_dir, "artifact.yaml"), {"kind": "model", "name": "tiny-hf", "version": "1.0.0", "role": "draft"})
    # Exports shaped like real families (onnx-community layout, fp32/fp16/q4), with the draft's tokenizer.
    families_dir = os.path.join(ROOT, "test", "fixtures", "families") if not args.quick and out == os.path.join(ROOT, "artifacts") else os.path.join(out, "families")
    family_sizes = families.main(families_dir, os.path.join(out, "models", "draft"))
    print(json.dumps({k: sum(v.values()) for k, v in family_sizes.items()}), flush=True)
    t = mark("export", t)

    adapters = {"support": scaled(good, scale), "support-bad": scaled(bad, scale)}
    rates: dict[str, dict] = {}
    for domain in ("general", "support"):
        ids = [tok.encode(p) for p in prompts[domain][: plan["eval_prompts"]]]
        traj = [agreement.verifier_greedy(verifier, p, 32) for p in ids]
        rates[domain] = {"base": agreement.measure(draft, verifier, ids, trajectories=traj)}
        if domain == "support":
            for name, lora in adapters.items():
                rates[domain][name] = agreement.measure(draft, verifier, ids, lora=lora, trajectories=traj)
    print(json.dumps(rates, indent=2), flush=True)
    t = mark("agreement", t)

    # Golden values and the report describe the committed files, so only a full run into the
    # repository's artifacts/ replaces them; any other run keeps them next to its output.
    committed = not args.quick and out == os.path.join(ROOT, "artifacts")
    golden_path = args.golden or (os.path.join(ROOT, "test", "fixtures", "models.golden.json") if committed else os.path.join(out, "golden.json"))
    sample_texts = texts["general"][:3] + texts["support"][:3] + ["Hello world! It's 7:30, isn't it?  Order #48213 <|endoftext|>next"]
    os.makedirs(os.path.dirname(golden_path), exist_ok=True)
    write_json(golden_path, golden(draft, verifier, tok, prompts, adapters, sample_texts))
    # The q4 draft's reference: the same Decoder with its weights dequantized from q4 (fixtures/q4.py).
    q4.add_q4_golden(golden_path, os.path.join(out, "models", "draft"))
    # The committed golden file lives in test/, which `npm run lint` checks with Prettier.
    subprocess.call([shutil.which("npx") or "npx", "prettier", "--log-level", "warn", "--write", golden_path], cwd=ROOT)

    report = {
        "mode": "quick" if args.quick else "full",
        "seed": SEED,
        "plan": plan,
        "tokens": {d: len(s) for d, s in streams.items()},
        "parameters": {"draft": count_parameters(draft), "verifier": count_parameters(verifier), "tiny-hf": tiny_params},
        "macs_per_token": {"draft": macs_per_token(DRAFT), "verifier": macs_per_token(VERIFIER)},
        "compute_ratio": round(macs_per_token(VERIFIER) / macs_per_token(DRAFT), 2),
        "agreement": rates,
        "sizes_bytes": {sub: dir_size(os.path.join(out, sub)) for sub in ("corpus", "prompts", "models", "adapters")},
        "timings_s": timings,
        "total_s": round(time.time() - t_start, 1),
        "threads": args.threads,
        # Other work on the machine slows training a lot; record how busy it was.
        "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
    }
    report["sizes_bytes"]["total"] = sum(report["sizes_bytes"].values())
    write_json(os.path.join(ROOT, "tools", "generation-report.json") if committed else os.path.join(out, "generation-report.json"), report)
    print(json.dumps(report, indent=2), flush=True)

    if not args.no_check:
        env = dict(os.environ, EDGECTL_FIXTURES_DIR=out, EDGECTL_SKIP_BUILD="1")
        env["EDGECTL_FIXTURES_GOLDEN"] = golden_path
        npx = shutil.which("npx") or "npx"
        rc = subprocess.call([npx, "vitest", "run", "test/fixtures/models.test.ts"], cwd=ROOT, env=env)
        if rc != 0:
            sys.exit(f"Node validation failed (exit {rc})")


if __name__ == "__main__":
    main()
