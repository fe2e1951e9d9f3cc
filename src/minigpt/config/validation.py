"""Checks on a resolved run config: bad values fail here in one line, not deep inside torch."""

from __future__ import annotations

import dataclasses
import math

from minigpt.config.fields import suggest
from minigpt.config.schema import RunConfig
from minigpt.errors import MiniGPTError


def validate(config: RunConfig) -> None:
    """Reject values that would fail later, deep inside torch, with a confusing message."""
    m, t = config.model, config.train
    check_finite(m)
    check_finite(t)
    if m.vocab_size < 0:
        raise MiniGPTError(f"vocab_size must be >= 0 (0: from the dataset), got {m.vocab_size}")
    positive = {
        "block_size": m.block_size,
        "n_layer": m.n_layer,
        "n_head": m.n_head,
        "n_embd": m.n_embd,
        "grad_accum": t.grad_accum,
        "max_iters": t.max_iters,
        "eval_interval": t.eval_interval,
        "eval_iters": t.eval_iters,
        "log_interval": t.log_interval,
        "checkpoint_interval": t.checkpoint_interval,
    }
    for name, value in positive.items():
        if value <= 0:
            raise MiniGPTError(f"{name} must be a positive integer, got {value}")
    if m.n_embd % m.n_head:
        raise MiniGPTError(
            f"n_embd ({m.n_embd}) must be divisible by n_head ({m.n_head}); "
            f"e.g. n_embd {m.n_head * max(1, round(m.n_embd / m.n_head))}"
        )
    if not 0.0 <= m.dropout < 1.0:
        raise MiniGPTError(f"dropout must be in [0, 1), got {m.dropout}")
    if not t.lr > 0:
        raise MiniGPTError(f"lr must be a positive number, got {t.lr}")
    if not 0.0 <= t.min_lr_ratio <= 1.0:
        raise MiniGPTError(f"min_lr_ratio must be in [0, 1], got {t.min_lr_ratio}")
    if t.batch_size < 0:
        raise MiniGPTError(f"batch_size must be a positive integer or auto, got {t.batch_size}")
    for name in ("warmup_iters", "lr_decay_iters", "effective_batch"):
        if getattr(t, name) < 0:
            raise MiniGPTError(f"{name} must be >= 0, got {getattr(t, name)}")
    if not t.max_minutes >= 0:
        raise MiniGPTError(f"max_minutes must be >= 0 (0: no limit), got {t.max_minutes}")
    for name in ("weight_decay", "grad_clip"):
        if getattr(t, name) < 0:
            raise MiniGPTError(f"{name} must be >= 0, got {getattr(t, name)}")
    for name in ("beta1", "beta2"):
        if not 0.0 <= getattr(t, name) < 1.0:
            raise MiniGPTError(f"{name} must be in [0, 1), got {getattr(t, name)}")
    choices = {
        "pos": ("learned", "rope"),
        "norm": ("layernorm", "rmsnorm"),
        "mlp": ("gelu", "gelu_exact", "relu2", "swiglu"),
        "optimizer": ("adamw", "muon"),
        "schedule": ("cosine", "wsd"),
    }
    for name, allowed in choices.items():
        value = getattr(m if hasattr(m, name) else t, name)
        if value not in allowed:
            raise MiniGPTError(
                f"{name} must be {' or '.join(allowed)}, got {value!r}{suggest(value, allowed)}"
            )
    if m.pos == "rope" and (m.n_embd // m.n_head) % 2:
        raise MiniGPTError(
            f"rope needs an even head size, got n_embd/n_head = {m.n_embd // m.n_head}; "
            "change n_embd or n_head"
        )
    if not m.rope_base > 1:
        raise MiniGPTError(f"rope_base must be > 1, got {m.rope_base}")
    if not m.logit_softcap >= 0:
        raise MiniGPTError(f"logit_softcap must be >= 0 (0: off), got {m.logit_softcap}")
    if not t.muon_lr > 0:
        raise MiniGPTError(f"muon_lr must be a positive number, got {t.muon_lr}")
    if not t.embed_lr >= 0:
        raise MiniGPTError(f"embed_lr must be >= 0 (0: use lr), got {t.embed_lr}")
    if not 0.0 <= t.muon_momentum < 1.0:
        raise MiniGPTError(f"muon_momentum must be in [0, 1), got {t.muon_momentum}")
    if t.muon_weight_decay < 0:
        raise MiniGPTError(f"muon_weight_decay must be >= 0, got {t.muon_weight_decay}")
    if t.fsdp and t.optimizer == "muon":
        raise MiniGPTError(
            "fsdp splits each weight matrix over the ranks, but muon orthogonalises whole "
            "matrices; use --optimizer adamw with --fsdp, or drop --fsdp (DDP works with muon)"
        )
    if not 0.0 <= t.cooldown_frac <= 1.0:
        raise MiniGPTError(f"cooldown_frac must be in [0, 1], got {t.cooldown_frac}")
    if t.dtype not in ("auto", "float32", "bfloat16", "float16"):
        raise MiniGPTError(
            f"dtype must be auto, float32, bfloat16 or float16, got '{t.dtype}'"
            f"{suggest(t.dtype, ['float32', 'bfloat16', 'float16'])}"
        )
    choices = {
        "compile": ("auto", "true", "false"),
        "on_bad_loss": ("stop", "skip"),
        "data_format": ("text", "chat"),
        "chat_batching": ("pack", "pad"),
    }
    for name, allowed in choices.items():
        value = getattr(t, name)
        if value not in allowed:
            raise MiniGPTError(
                f"{name} must be {', '.join(allowed[:-1])} or {allowed[-1]}, got {value!r}"
                f"{suggest(value, allowed)}"
            )
    for name in ("keep_checkpoints",):
        if getattr(t, name) < 1:
            raise MiniGPTError(f"{name} must be >= 1, got {getattr(t, name)}")
    for name in ("early_stop", "sample_tokens"):
        if getattr(t, name) < 0:
            raise MiniGPTError(f"{name} must be >= 0, got {getattr(t, name)}")
    if not (t.spike_threshold == 0 or t.spike_threshold > 1):
        raise MiniGPTError(
            f"spike_threshold must be 0 (off) or above 1, got {t.spike_threshold}; e.g. 3"
        )


def check_finite(section: object) -> None:
    """No number in a config may be inf or nan: no option has a meaning for them, and the
    range checks below let them through (``inf >= 0`` holds, ``nan < 0`` does not)."""
    for field in dataclasses.fields(section):
        value = getattr(section, field.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise MiniGPTError(f"{field.name} must be a finite number, got {value}")
