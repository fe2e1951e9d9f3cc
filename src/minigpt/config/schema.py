"""The run config's schema: the model and training dataclasses, one field per flag."""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from typing import Any

from minigpt.config.fields import described


@dataclass
class ModelConfig:
    """Shape of the GPT. The defaults are GPT-2 small's block, at a CPU-friendly size."""

    vocab_size: int = described(0, "tokens in the vocabulary (0: take it from the dataset)")
    block_size: int = described(256, "context length in tokens")
    n_layer: int = described(6, "number of transformer blocks")
    n_head: int = described(6, "attention heads per block (must divide n_embd)")
    n_embd: int = described(384, "width of the residual stream")
    dropout: float = described(0.0, "dropout probability (0 disables it)")
    bias: bool = described(True, "biases in Linear layers and LayerNorms, as in GPT-2")
    tie_embeddings: bool = described(True, "share the token embedding with the output head")
    pos: str = described("learned", "position encoding: learned (GPT-2 table) or rope (rotary)")
    rope_base: float = described(10000.0, "rotary base: the longest wavelength, in positions")
    norm: str = described("layernorm", "normalisation: layernorm (GPT-2) or rmsnorm")
    qk_norm: bool = described(False, "RMSNorm on each head's queries and keys")
    mlp: str = described(
        "gelu",
        "feed-forward: gelu (GPT-2's tanh GELU), gelu_exact (erf GELU, as nanoGPT), relu2 "
        "(ReLU squared) or swiglu",
    )
    logit_softcap: float = described(0.0, "soft-cap the output logits at this value (0: off)")
    zero_init_proj: bool = described(False, "initialise the blocks' output projections to zero")


def swiglu_hidden(n_embd: int) -> int:
    """SwiGLU's hidden width: 8/3 n_embd rounded up to a multiple of 32 (as in Llama)."""
    return 32 * math.ceil(8 * n_embd / 3 / 32)


@dataclass
class TrainConfig:
    """How to train: data, optimisation, schedule, evaluation and bookkeeping."""

    data: str = described("", "prepared dataset folder (from `minigpt prepare`)")
    out_dir: str = described("runs/default", "run folder for checkpoints, config and logs")
    batch_size: int = described(
        12, "micro-batch size (sequences per forward pass); auto (stored as 0): fit the device"
    )
    grad_accum: int = described(1, "micro-batches accumulated per optimizer step")
    effective_batch: int = described(
        0, "sequences per step that batch_size auto keeps (0: batch_size x grad_accum before auto)"
    )
    max_iters: int = described(5000, "optimizer steps to train for")
    max_minutes: float = described(0.0, "stop after this many minutes of training (0: no limit)")
    lr: float = described(6e-4, "peak learning rate")
    min_lr_ratio: float = described(0.1, "final learning rate as a fraction of the peak")
    warmup_iters: int = described(100, "linear warm-up steps")
    lr_decay_iters: int = described(0, "steps of cosine decay (0: decay until max_iters)")
    weight_decay: float = described(0.1, "AdamW weight decay, on weight matrices only")
    beta1: float = described(0.9, "AdamW beta1")
    beta2: float = described(0.95, "AdamW beta2")
    grad_clip: float = described(1.0, "clip the gradient norm to this (0 disables clipping)")
    eval_interval: int = described(500, "estimate train/val loss every this many steps")
    eval_iters: int = described(100, "batches per loss estimate")
    log_interval: int = described(100, "print a log line every this many steps")
    checkpoint_interval: int = described(1000, "write a checkpoint every this many steps")
    seed: int = described(1337, "random seed (weights, batches, dropout)")
    device: str = described("auto", "auto, cpu, cuda, cuda:N or mps")
    dtype: str = described(
        "auto", "auto, float32, bfloat16 or float16 (autocast; auto: bf16/fp16 on GPU, fp32 on CPU)"
    )
    compile: str = described(
        "auto", "torch.compile the model: true, false or auto (on for CUDA, off elsewhere)"
    )
    keep_checkpoints: int = described(2, "keep the newest this many checkpoints (plus the best)")
    on_bad_loss: str = described("stop", "NaN/inf loss or spike: stop, or skip the step and go on")
    spike_threshold: float = described(
        3.0, "a loss above this times its recent average is a spike (0 disables)"
    )
    early_stop: int = described(0, "stop after this many evals without a better val loss (0: off)")
    sample_prompt: str = described("", "prompt for the sample written at each eval")
    sample_tokens: int = described(200, "tokens of the sample written at each eval (0: none)")
    tensorboard: bool = described(True, "write TensorBoard logs when tensorboard is installed")
    optimizer: str = described(
        "adamw", "adamw, or muon (Muon for hidden matrices, AdamW for the rest)"
    )
    muon_lr: float = described(0.02, "Muon's learning rate for the blocks' weight matrices")
    muon_momentum: float = described(0.95, "Muon's momentum (Nesterov)")
    muon_weight_decay: float = described(0.0, "Muon's decoupled weight decay")
    embed_lr: float = described(0.0, "AdamW lr of the embeddings and head with muon (0: lr)")
    schedule: str = described(
        "cosine", "cosine (warm-up + cosine) or wsd (warm-up, constant, cool-down)"
    )
    cooldown_frac: float = described(0.2, "wsd: share of the steps spent cooling down linearly")
    fsdp: bool = described(False, "shard the model over the ranks with FSDP (under torchrun)")
    data_format: str = described(
        "text", "text, or chat: a chat dataset (prepare --format chat), trained on replies only"
    )
    chat_batching: str = described(
        "pad", "chat: pad (one conversation per row), or pack them (attention kept inside each)"
    )


@dataclass
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {"model": dataclasses.asdict(self.model), "train": dataclasses.asdict(self.train)}


SECTIONS: dict[str, type] = {"model": ModelConfig, "train": TrainConfig}


def all_fields() -> dict[str, tuple[str, dataclasses.Field, Any]]:
    """Every config field by name: (section, field, python type)."""
    out: dict[str, tuple[str, dataclasses.Field, Any]] = {}
    for section, cls in SECTIONS.items():
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            out[f.name] = (section, f, hints[f.name])
    return out
