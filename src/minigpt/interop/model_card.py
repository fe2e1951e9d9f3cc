"""README.md of an exported model: what the model is, how it was trained, how to use it."""

from __future__ import annotations

import math
from pathlib import Path

import tomli_w
import torch

from minigpt._version import __version__
from minigpt.checkpoint import Checkpoint
from minigpt.config import ModelConfig, RunConfig, TrainConfig
from minigpt.data.tokenizer import Tokenizer
from minigpt.interop.hf_base import HFArchitecture
from minigpt.model import GPT


def optimiser_summary(t: TrainConfig) -> str:
    """The optimizer and schedule as the run used them."""
    schedule = f"{t.schedule} schedule, warm-up {t.warmup_iters}"
    if t.optimizer == "muon":
        return (
            f"Muon (lr {t.muon_lr:g}) on the hidden matrices, AdamW (lr {t.lr:g}) on the rest, "
            f"{schedule}"
        )
    return f"AdamW, lr {t.lr:g}, {schedule}, weight decay {t.weight_decay:g}"


def architecture_summary(m: ModelConfig) -> str:
    """The options that decide what the weights compute, in words."""
    positions = f"rotary (base {m.rope_base:g})" if m.pos == "rope" else "learned table"
    parts = [
        f"positions: {positions}",
        f"norm: {m.norm}" + (" + QK-norm" if m.qk_norm else ""),
        f"MLP: {m.mlp}",
    ]
    if m.logit_softcap > 0:
        parts.append(f"logits soft-capped at {m.logit_softcap:g}")
    return "; ".join(parts)


def model_card(
    ckpt: Checkpoint,
    config: RunConfig,
    tokenizer: Tokenizer,
    dtype: str,
    notes: list[str],
    folder: Path,
    arch: HFArchitecture,
) -> str:
    m, t = config.model, config.train
    state = ckpt.state
    with torch.device("meta"):
        n_params = GPT(m).num_params()
    tokens = ckpt.iteration * t.batch_size * t.grad_accum * m.block_size
    best = state.get("best_val_loss")
    best_text = (
        f"{best:.4f} (perplexity {math.exp(best):.2f})"
        if isinstance(best, (int, float)) and math.isfinite(best)
        else "not evaluated"
    )
    last = (state.get("history") or [{}])[-1]
    last_text = (
        f"train {last['train']:.4f}, val {last['val']:.4f} at iteration {last['iter']}"
        if {"train", "val", "iter"} <= set(last)
        else "none"
    )
    vocab = f"{m.vocab_size:,} ({tokenizer.kind} tokenizer with {tokenizer.vocab_size:,} tokens)"
    rows = [
        ("transformers architecture", f"{arch.name} (`model_type: {arch.model_type}`)"),
        ("options", architecture_summary(m)),
        ("parameters", f"{n_params:,}"),
        ("layers / heads / width", f"{m.n_layer} / {m.n_head} / {m.n_embd}"),
        ("context", f"{m.block_size}"),
        ("vocabulary", vocab),
        ("biases", "yes" if m.bias else "none"),
        ("output head", "tied to the token embedding" if m.tie_embeddings else "separate"),
        ("weights", dtype),
    ]
    training = [
        ("iterations", f"{ckpt.iteration:,}"),
        ("tokens seen", f"{tokens:,}"),
        ("best val loss", best_text),
        ("last evaluation", last_text),
        ("dataset", f"`{t.data}`" if t.data else "unknown"),
        ("started from", f"`{state['init_from']}`" if state.get("init_from") else "scratch"),
        ("optimiser", optimiser_summary(t)),
        ("batch", f"{t.batch_size} x {t.grad_accum} x {m.block_size} tokens"),
        ("minigpt", state.get("minigpt_version", __version__)),
    ]
    eot = tokenizer.eot_id
    prompt = '"Once upon a time"'
    name, path = folder.name, folder.as_posix()
    trust = ", trust_remote_code=True" if arch.remote_code else ""
    remote = (
        [
            "",
            "The model is minigpt's own (no transformers class computes these options exactly):",
            "its code ships in this folder (`modeling_minigpt.py`, `configuration_minigpt.py`,",
            "torch and transformers only), hence `trust_remote_code=True`; it runs offline.",
        ]
        if arch.remote_code
        else []
    )
    return "\n".join(
        [
            "---",
            "library_name: transformers",
            "pipeline_tag: text-generation",
            f"tags: [minigpt, {arch.model_type}, text-generation]",
            "---",
            "",
            f"# {name}",
            "",
            f"A {arch.name} language model trained with minigpt, exported from "
            f"`{ckpt.path}` (iteration {ckpt.iteration}).",
            *remote,
            "",
            "## Use",
            "",
            "```python",
            "from transformers import AutoModelForCausalLM, AutoTokenizer",
            "",
            f'tokenizer = AutoTokenizer.from_pretrained("{path}"{trust})',
            f'model = AutoModelForCausalLM.from_pretrained("{path}"{trust})',
            f"ids = tokenizer({prompt}, return_tensors='pt').input_ids",
            "out = model.generate(ids, max_new_tokens=100)  # sampling settings: generation_config.json",
            "print(tokenizer.decode(out[0]))",
            "```",
            "",
            f"or `minigpt sample {path}`, or fine-tune it: `minigpt train --init-from hf:{path} ...`.",
            "",
            "## Model",
            "",
            *_table(rows),
            "",
            "## Training",
            "",
            *_table(training),
            "",
            "## Notes",
            "",
            *[f"- {note}" for note in notes],
            *([f"- end-of-text token id: {eot}"] if eot is not None else []),
            "",
            "## Full minigpt config",
            "",
            "```toml",
            tomli_w.dumps(config.to_dict()).strip(),
            "```",
            "",
        ]
    )


def _table(rows: list[tuple[str, str]]) -> list[str]:
    return ["| | |", "| --- | --- |", *[f"| {k} | {v} |" for k, v in rows]]
