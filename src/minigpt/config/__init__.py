"""Typed run configuration: defaults, named presets, TOML files and command-line overrides.

A run is fully described by a ``RunConfig`` (a ``ModelConfig`` plus a ``TrainConfig``). It is
resolved in layers, each overriding the one before: dataclass defaults, then a named preset,
then a TOML file, then individual overrides (the command line). The resolved config is saved
next to the checkpoints as ``config.toml``, and ``minigpt train --config that/config.toml``
reproduces the run.

Field names are unique across both sections, so every field is also one flat CLI flag
(``--n-layer 4``) and one flat key in code (``overrides={"n_layer": 4}``).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from minigpt.errors import MiniGPTError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib


def _field(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass
class ModelConfig:
    """Shape of the GPT. The defaults are GPT-2 small's block, at a CPU-friendly size."""

    vocab_size: int = _field(0, "tokens in the vocabulary (0: take it from the dataset)")
    block_size: int = _field(256, "context length in tokens")
    n_layer: int = _field(6, "number of transformer blocks")
    n_head: int = _field(6, "attention heads per block (must divide n_embd)")
    n_embd: int = _field(384, "width of the residual stream")
    dropout: float = _field(0.0, "dropout probability (0 disables it)")
    bias: bool = _field(True, "biases in Linear layers and LayerNorms, as in GPT-2")
    tie_embeddings: bool = _field(True, "share the token embedding with the output head")
    pos: str = _field("learned", "position encoding: learned (GPT-2 table) or rope (rotary)")
    rope_base: float = _field(10000.0, "rotary base: the longest wavelength, in positions")
    norm: str = _field("layernorm", "normalisation: layernorm (GPT-2) or rmsnorm")
    qk_norm: bool = _field(False, "RMSNorm on each head's queries and keys")
    mlp: str = _field("gelu", "feed-forward: gelu (GPT-2), relu2 (ReLU squared) or swiglu")
    logit_softcap: float = _field(0.0, "soft-cap the output logits at this value (0: off)")
    zero_init_proj: bool = _field(False, "initialise the blocks' output projections to zero")


def swiglu_hidden(n_embd: int) -> int:
    """SwiGLU's hidden width: 8/3 n_embd rounded up to a multiple of 32 (as in Llama)."""
    return 32 * math.ceil(8 * n_embd / 3 / 32)


@dataclass
class TrainConfig:
    """How to train: data, optimisation, schedule, evaluation and bookkeeping."""

    data: str = _field("", "prepared dataset folder (from `minigpt prepare`)")
    out_dir: str = _field("runs/default", "run folder for checkpoints, config and logs")
    batch_size: int = _field(
        12, "micro-batch size (sequences per forward pass); auto (stored as 0): fit the device"
    )
    grad_accum: int = _field(1, "micro-batches accumulated per optimizer step")
    effective_batch: int = _field(
        0, "sequences per step that batch_size auto keeps (0: batch_size x grad_accum before auto)"
    )
    max_iters: int = _field(5000, "optimizer steps to train for")
    max_minutes: float = _field(0.0, "stop after this many minutes of training (0: no limit)")
    lr: float = _field(6e-4, "peak learning rate")
    min_lr_ratio: float = _field(0.1, "final learning rate as a fraction of the peak")
    warmup_iters: int = _field(100, "linear warm-up steps")
    lr_decay_iters: int = _field(0, "steps of cosine decay (0: decay until max_iters)")
    weight_decay: float = _field(0.1, "AdamW weight decay, on weight matrices only")
    beta1: float = _field(0.9, "AdamW beta1")
    beta2: float = _field(0.95, "AdamW beta2")
    grad_clip: float = _field(1.0, "clip the gradient norm to this (0 disables clipping)")
    eval_interval: int = _field(500, "estimate train/val loss every this many steps")
    eval_iters: int = _field(100, "batches per loss estimate")
    log_interval: int = _field(100, "print a log line every this many steps")
    checkpoint_interval: int = _field(1000, "write a checkpoint every this many steps")
    seed: int = _field(1337, "random seed (weights, batches, dropout)")
    device: str = _field("auto", "auto, cpu, cuda, cuda:N or mps")
    dtype: str = _field(
        "auto", "auto, float32, bfloat16 or float16 (autocast; auto: bf16/fp16 on GPU, fp32 on CPU)"
    )
    compile: str = _field(
        "auto", "torch.compile the model: true, false or auto (on for CUDA, off elsewhere)"
    )
    keep_checkpoints: int = _field(2, "keep the newest this many checkpoints (plus the best)")
    on_bad_loss: str = _field("stop", "NaN/inf loss or spike: stop, or skip the step and go on")
    spike_threshold: float = _field(
        3.0, "a loss above this times its recent average is a spike (0 disables)"
    )
    early_stop: int = _field(0, "stop after this many evals without a better val loss (0: off)")
    sample_prompt: str = _field("", "prompt for the sample written at each eval")
    sample_tokens: int = _field(200, "tokens of the sample written at each eval (0: none)")
    tensorboard: bool = _field(True, "write TensorBoard logs when tensorboard is installed")
    optimizer: str = _field(
        "adamw", "adamw, or muon (Muon for hidden matrices, AdamW for the rest)"
    )
    muon_lr: float = _field(0.02, "Muon's learning rate for the blocks' weight matrices")
    muon_momentum: float = _field(0.95, "Muon's momentum (Nesterov)")
    muon_weight_decay: float = _field(0.0, "Muon's decoupled weight decay")
    embed_lr: float = _field(0.0, "AdamW lr of the embeddings and head with muon (0: lr)")
    schedule: str = _field(
        "cosine", "cosine (warm-up + cosine) or wsd (warm-up, constant, cool-down)"
    )
    cooldown_frac: float = _field(0.2, "wsd: share of the steps spent cooling down linearly")
    fsdp: bool = _field(False, "shard the model over the ranks with FSDP (under torchrun)")


@dataclass
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {"model": dataclasses.asdict(self.model), "train": dataclasses.asdict(self.train)}


SECTIONS: dict[str, type] = {"model": ModelConfig, "train": TrainConfig}

# The architecture and optimizer of the modern recipe (docs/modern.md), shared by its presets.
MODERN_RECIPE: dict[str, Any] = dict(
    bias=False,
    pos="rope",
    norm="rmsnorm",
    qk_norm=True,
    mlp="relu2",
    tie_embeddings=False,
    logit_softcap=30.0,
    zero_init_proj=True,
    optimizer="muon",
)

PRESETS: dict[str, dict[str, Any]] = {
    # The classic char-level Tiny Shakespeare model.
    "shakespeare-char": dict(
        batch_size=64,
        block_size=128,
        n_layer=6,
        n_head=8,
        n_embd=256,
        dropout=0.1,
        lr=3e-4,
        max_iters=5000,
        warmup_iters=100,
        log_interval=500,
        eval_interval=500,
        checkpoint_interval=1000,
        eval_iters=50,
        out_dir="runs/shakespeare-char",
    ),
    # The course's ~100M model: 12 layers, 12 heads, 768 wide, 32k BPE vocab, no biases.
    "course-100m": dict(
        n_layer=12,
        n_head=12,
        n_embd=768,
        block_size=512,
        vocab_size=32000,
        dropout=0.1,
        bias=False,
        batch_size=12,
        grad_accum=4,
        lr=6e-4,
        max_iters=5000,
        warmup_iters=200,
        eval_interval=500,
        eval_iters=100,
        log_interval=50,
        checkpoint_interval=500,
        out_dir="runs/course-100m",
    ),
    # Trains in about two minutes on a 2-core CPU and still writes recognisable text.
    "cpu-demo": dict(
        n_layer=4,
        n_head=4,
        n_embd=128,
        block_size=64,
        dropout=0.0,
        batch_size=16,
        lr=2e-3,
        max_iters=1800,
        warmup_iters=50,
        weight_decay=0.1,
        eval_interval=300,
        eval_iters=20,
        log_interval=100,
        checkpoint_interval=300,
        out_dir="runs/cpu-demo",
    ),
    # The modern recipe for a 2-core CPU: the classic 4x4x128 model (block 64) with rotary
    # positions, RMSNorm, QK-norm, ReLU^2, an untied head, zero-initialised projections and
    # Muon, at a larger batch (Muon's orthogonalisation costs per step, not per token) and a
    # WSD schedule. Reaches the classic run's val loss (1.89) in 0.45x its time (BENCHMARKS.md).
    "cpu-fast": dict(
        n_layer=4,
        n_head=4,
        n_embd=128,
        block_size=64,
        dropout=0.0,
        **MODERN_RECIPE,
        muon_lr=0.04,
        lr=5e-3,
        beta2=0.99,
        weight_decay=0.0,
        batch_size=32,
        max_iters=400,
        warmup_iters=10,
        schedule="wsd",
        cooldown_frac=0.5,
        min_lr_ratio=0.0,
        eval_interval=100,
        eval_iters=20,
        log_interval=50,
        checkpoint_interval=100,
        out_dir="runs/cpu-fast",
    ),
    # The same recipe at GPT-2 small's size (12 x 12 x 768, block 1024) for a GPU, in the
    # spirit of the GPT-2 speedruns: bf16, compiled, Muon at 0.02, WSD. Not benchmarked here.
    "modern-124m": dict(
        n_layer=12,
        n_head=12,
        n_embd=768,
        block_size=1024,
        vocab_size=50304,
        dropout=0.0,
        **MODERN_RECIPE,
        muon_lr=0.02,
        lr=3e-3,
        weight_decay=0.0,
        batch_size=16,
        grad_accum=32,
        max_iters=3000,
        warmup_iters=100,
        schedule="wsd",
        cooldown_frac=0.4,
        min_lr_ratio=0.0,
        eval_interval=250,
        eval_iters=50,
        log_interval=10,
        checkpoint_interval=500,
        out_dir="runs/modern-124m",
    ),
}


def all_fields() -> dict[str, tuple[str, dataclasses.Field, Any]]:
    """Every config field by name: (section, field, python type)."""
    out: dict[str, tuple[str, dataclasses.Field, Any]] = {}
    for section, cls in SECTIONS.items():
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            out[f.name] = (section, f, hints[f.name])
    return out


def suggest(name: str, choices: typing.Iterable[str]) -> str:
    """' (did you mean X?)' for a near miss, else ''."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _base_type(tp: Any) -> Any:
    """int for int, int for `int | None`."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0]
    return tp


def coerce(name: str, value: Any, tp: Any) -> Any:
    """Convert ``value`` (from TOML or a CLI string) to the field's type, or fail in one line."""
    base = _base_type(tp)
    if value is None or (isinstance(value, str) and value.lower() == "none" and base is not str):
        if base is not tp:  # optional field
            return None
        raise MiniGPTError(f"config key '{name}' cannot be empty; give a {base.__name__}")
    try:
        if base is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on"):
                return True
            if isinstance(value, str) and value.lower() in ("false", "0", "no", "off"):
                return False
            raise ValueError
        if base is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if base is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if base is str:
            if isinstance(value, bool):  # e.g. `compile = true` in TOML
                return "true" if value else "false"
            if not isinstance(value, str):
                raise ValueError
            return value
    except (TypeError, ValueError):
        pass
    raise MiniGPTError(
        f"config key '{name}' expects {base.__name__}, got {value!r}; "
        f"e.g. {name} = {_example(base)}"
    )


def _example(base: Any) -> str:
    return {bool: "true", int: "4", float: "0.001", str: '"text"'}.get(base, "...")


def apply_overrides(config: RunConfig, overrides: dict[str, Any], source: str) -> None:
    """Set flat ``name -> value`` pairs on the config, checking names and types."""
    fields = all_fields()
    for name, value in overrides.items():
        key = name.replace("-", "_")
        if key not in fields:
            raise MiniGPTError(f"unknown config key '{name}' in {source}{suggest(key, fields)}")
        section, _, tp = fields[key]
        if key == "batch_size" and isinstance(value, str) and value.lower() == "auto":
            value = 0
        value = coerce(key, value, tp)
        if key == "batch_size" and value == 0:
            _set_auto_batch(config.train)
        else:
            setattr(getattr(config, section), key, value)


def _set_auto_batch(train: TrainConfig) -> None:
    """``batch_size = auto`` is stored as 0; it keeps the effective batch of the layers below."""
    if train.batch_size > 0 and train.effective_batch == 0:
        train.effective_batch = train.batch_size * train.grad_accum
    train.batch_size = 0


def _flatten_toml(data: dict[str, Any], path: Path) -> tuple[str | None, dict[str, Any]]:
    """Accept both ``[model]``/``[train]`` tables and flat keys; return (preset, flat dict)."""
    flat: dict[str, Any] = {}
    preset = data.pop("preset", None)
    for key, value in data.items():
        if key in SECTIONS:
            if not isinstance(value, dict):
                raise MiniGPTError(f"'{key}' in {path} must be a table like [{key}]")
            flat.update(value)
        elif isinstance(value, dict):
            raise MiniGPTError(
                f"unknown table [{key}] in {path}{suggest(key, SECTIONS)}; use [model] or [train]"
            )
        else:
            flat[key] = value
    return preset, flat


def read_toml(path: str | Path, what: str = "config file") -> dict[str, Any]:
    """Parse a TOML file; ``what`` names it in errors (e.g. "search space")."""
    path = Path(path)
    if not path.is_file():
        raise MiniGPTError(f"{what} {path} not found; check the path")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise MiniGPTError(f"{what} {path} is not valid TOML: {e}") from None


def preset_overrides(name: str) -> dict[str, Any]:
    if name not in PRESETS:
        raise MiniGPTError(
            f"unknown preset '{name}'{suggest(name, PRESETS)}; choose from {', '.join(PRESETS)}"
        )
    return dict(PRESETS[name])


def load_config(
    preset: str | None = None,
    config_file: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> RunConfig:
    """Resolve defaults < preset < TOML file < overrides into a validated RunConfig."""
    config = RunConfig()
    file_preset, file_values = None, {}
    if config_file is not None:
        file_preset, file_values = _flatten_toml(read_toml(config_file), Path(config_file))
    chosen = preset or file_preset
    if chosen:
        apply_overrides(config, preset_overrides(chosen), f"preset '{chosen}'")
    apply_overrides(config, file_values, str(config_file))
    apply_overrides(config, overrides or {}, "the command line")
    validate(config)
    return config


def validate(config: RunConfig) -> None:
    """Reject values that would fail later, deep inside torch, with a confusing message."""
    m, t = config.model, config.train
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
    if not (t.lr > 0 and math.isfinite(t.lr)):
        raise MiniGPTError(f"lr must be a positive number, got {t.lr}")
    if not 0.0 <= t.min_lr_ratio <= 1.0:
        raise MiniGPTError(f"min_lr_ratio must be in [0, 1], got {t.min_lr_ratio}")
    if t.batch_size < 0:
        raise MiniGPTError(f"batch_size must be a positive integer or auto, got {t.batch_size}")
    for name in ("warmup_iters", "lr_decay_iters", "effective_batch"):
        if getattr(t, name) < 0:
            raise MiniGPTError(f"{name} must be >= 0, got {getattr(t, name)}")
    if not (t.max_minutes >= 0 and math.isfinite(t.max_minutes)):
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
        "mlp": ("gelu", "relu2", "swiglu"),
        "optimizer": ("adamw", "muon"),
        "schedule": ("cosine", "wsd"),
    }
    for name, allowed in choices.items():
        value = getattr(m if hasattr(m, name) else t, name)
        if value not in allowed:
            raise MiniGPTError(
                f"{name} must be {' or '.join(allowed)}, got '{value}'{suggest(value, allowed)}"
            )
    if m.pos == "rope" and (m.n_embd // m.n_head) % 2:
        raise MiniGPTError(
            f"rope needs an even head size, got n_embd/n_head = {m.n_embd // m.n_head}; "
            "change n_embd or n_head"
        )
    if not m.rope_base > 1:
        raise MiniGPTError(f"rope_base must be > 1, got {m.rope_base}")
    if not (m.logit_softcap >= 0 and math.isfinite(m.logit_softcap)):
        raise MiniGPTError(f"logit_softcap must be >= 0 (0: off), got {m.logit_softcap}")
    if not (t.muon_lr > 0 and math.isfinite(t.muon_lr)):
        raise MiniGPTError(f"muon_lr must be a positive number, got {t.muon_lr}")
    if not (t.embed_lr >= 0 and math.isfinite(t.embed_lr)):
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
    choices = {"compile": ("auto", "true", "false"), "on_bad_loss": ("stop", "skip")}
    for name, allowed in choices.items():
        value = getattr(t, name)
        if value not in allowed:
            raise MiniGPTError(
                f"{name} must be {', '.join(allowed[:-1])} or {allowed[-1]}, got '{value}'"
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


def save_config(config: RunConfig, path: str | Path) -> None:
    """Write the resolved config as TOML (``minigpt train --config`` reads it back)."""
    Path(path).write_text(tomli_w.dumps(config.to_dict()), encoding="utf-8")


def config_from_dict(data: dict[str, Any]) -> RunConfig:
    """Rebuild a RunConfig from ``to_dict()`` output (e.g. a checkpoint's JSON)."""
    config = RunConfig()
    flat = {k: v for section in SECTIONS for k, v in data.get(section, {}).items()}
    apply_overrides(config, flat, "the checkpoint")
    return config
