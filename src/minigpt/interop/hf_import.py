"""The Hugging Face format: minigpt's GPT <-> transformers' ``GPT2LMHeadModel``, both ways.

The two are the same network with the same parameter names (``transformer.h.0.attn.c_attn``
...). Three things differ, and this module is where they are handled:

- GPT-2 keeps its attention and MLP projections in ``Conv1D`` layers, whose weight is
  (in, out): the transpose of ``nn.Linear``'s (out, in);
- GPT-2 always has biases: a minigpt model with ``bias=False`` is written with zero biases
  (the same function), and ``config.json`` records that, so importing it back drops them;
- GPT-2's ``n_positions`` is minigpt's ``block_size``.

Reading needs only ``safetensors`` and ``json``; writing a char tokenizer needs the
``tokenizers`` library; nothing here needs ``transformers`` except the optional checks in
``export.py``. Nothing is ever downloaded: ``hf:DIR`` is a folder on disk.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from minigpt.checkpoint import CHECKPOINTS_DIR, STATE_FILE, load_model_state
from minigpt.config import ModelConfig
from minigpt.data.hf_tokenizer import (
    HF_CONFIG_FILE,
    HF_PREFIX,
    hf_folder,
    tokenizer_from_hf,
)
from minigpt.data.tokenizer import Tokenizer
from minigpt.errors import MiniGPTError
from minigpt.model import GPT

HF_WEIGHTS_FILE = "model.safetensors"
HF_WEIGHTS_INDEX = "model.safetensors.index.json"
# Written into config.json so that an exported model imports back exactly (transformers keeps
# unknown config keys as plain attributes and otherwise ignores them).
MINIGPT_KEY = "minigpt"

# nn.Linear in minigpt, Conv1D in GPT-2: stored transposed.
CONV1D_WEIGHTS = (
    "attn.c_attn.weight",
    "attn.c_proj.weight",
    "mlp.c_fc.weight",
    "mlp.c_proj.weight",
)
# Causal-mask buffers that old GPT-2 checkpoints store alongside the weights.
MASK_BUFFERS = (".attn.bias", ".attn.masked_bias")
# GPT-2's GELU is the tanh approximation; transformers calls it by these names.
TANH_GELUS = ("gelu_new", "gelu_pytorch_tanh")

# ModelConfig fields that GPT-2's config expresses (see hf_architecture).
GPT2_FIELDS = frozenset(
    {"vocab_size", "block_size", "n_layer", "n_head", "n_embd", "dropout", "bias", "tie_embeddings"}
)
# Fields that change training but not the function the weights compute (e.g. an
# initialisation scheme): exportable at any value. Architecture options stay out of here.
ARCHITECTURE_NEUTRAL: set[str] = {"zero_init_proj"}
# Fields that matter only while another field has a value: exportable otherwise.
ONLY_WITH: dict[str, tuple[str, Any]] = {"rope_base": ("pos", "rope")}


# -- minigpt -> GPT-2 --------------------------------------------------------------------------


def hf_architecture(config: ModelConfig) -> dict[str, Any]:
    """The ``config.json`` of the GPT2LMHeadModel that computes what ``config``'s GPT does.

    Raises MiniGPTError naming every option GPT-2 cannot express: any ModelConfig field beyond
    the classic ones, set away from its default (the classic GPT-2 architecture).
    """
    defaults = type(config)()

    def matters(name: str) -> bool:
        other, value = ONLY_WITH.get(name, (name, getattr(config, name)))
        return name not in GPT2_FIELDS | ARCHITECTURE_NEUTRAL and getattr(config, other) == value

    unsupported = [
        f"{f.name}={getattr(config, f.name)!r}"
        for f in dataclasses.fields(config)
        if matters(f.name) and getattr(config, f.name) != getattr(defaults, f.name)
    ]
    if unsupported:
        raise MiniGPTError(
            f"transformers' GPT-2 cannot express this model's {', '.join(unsupported)}; "
            "only the classic GPT-2 architecture (the defaults of those options) can be exported"
        )
    if config.vocab_size <= 0:
        raise MiniGPTError("the model's vocab_size is not set; export a trained checkpoint")
    return {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "vocab_size": config.vocab_size,
        "n_positions": config.block_size,
        "n_embd": config.n_embd,
        "n_layer": config.n_layer,
        "n_head": config.n_head,
        "n_inner": None,
        "activation_function": "gelu_new",
        "resid_pdrop": config.dropout,
        "embd_pdrop": config.dropout,
        "attn_pdrop": config.dropout,
        "layer_norm_epsilon": 1e-5,
        "initializer_range": 0.02,
        "scale_attn_weights": True,
        "scale_attn_by_inverse_layer_idx": False,
        "reorder_and_upcast_attn": False,
        "add_cross_attention": False,
        "tie_word_embeddings": config.tie_embeddings,
        "use_cache": True,
        MINIGPT_KEY: {"bias": config.bias, "tie_embeddings": config.tie_embeddings},
    }


def to_hf_tensors(state: dict[str, torch.Tensor], config: ModelConfig) -> dict[str, torch.Tensor]:
    """minigpt weights (as in its checkpoints) -> GPT2LMHeadModel weights.

    Conv1D weights are transposed; without biases, zero biases are added, so the exported
    model computes exactly the same logits; a tied head is stored once, as ``wte``.
    """
    out: dict[str, torch.Tensor] = {}
    for name, tensor in state.items():
        if name == "lm_head.weight" and config.tie_embeddings:
            continue
        out[name] = (tensor.t() if name.endswith(CONV1D_WEIGHTS) else tensor).contiguous()
        if not config.bias and name.startswith(("transformer.h.", "transformer.ln_f.")):
            bias = name.removesuffix(".weight") + ".bias"
            out.setdefault(bias, torch.zeros(tensor.shape[0], dtype=tensor.dtype))
    return out


# -- GPT-2 -> minigpt --------------------------------------------------------------------------


def is_hf_ref(path: str | Path | None) -> bool:
    """True for ``hf:DIR``, and for a folder that holds a Hugging Face model (its config.json)."""
    if path is None:
        return False
    if str(path).startswith(HF_PREFIX):
        return True
    folder = Path(path)
    minigpt_folder = (folder / STATE_FILE).is_file() or (folder / CHECKPOINTS_DIR).is_dir()
    return (folder / HF_CONFIG_FILE).is_file() and not minigpt_folder


def read_hf_config(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / HF_CONFIG_FILE).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise MiniGPTError(f"{folder / HF_CONFIG_FILE} is not valid JSON ({e})") from None


def model_config_from_hf(hf: dict[str, Any], folder: Path | str = "the model") -> ModelConfig:
    """The ModelConfig of a GPT-2 ``config.json``; refuses variants minigpt's GPT cannot run."""
    model_type = hf.get("model_type")
    if model_type != "gpt2":
        raise MiniGPTError(
            f"{folder} is a {model_type!r} model; minigpt imports only the GPT-2 family "
            "(model_type 'gpt2': gpt2, distilgpt2, models exported by minigpt ...)"
        )
    n_embd, n_head = int(hf.get("n_embd", 768)), int(hf.get("n_head", 12))
    checks = [
        (hf.get("activation_function", "gelu_new") in TANH_GELUS, "activation_function"),
        (hf.get("n_inner") in (None, 4 * n_embd), "n_inner"),
        (hf.get("scale_attn_weights", True) is True, "scale_attn_weights"),
        (not hf.get("scale_attn_by_inverse_layer_idx", False), "scale_attn_by_inverse_layer_idx"),
        (not hf.get("add_cross_attention", False), "add_cross_attention"),
        (float(hf.get("layer_norm_epsilon", 1e-5)) == 1e-5, "layer_norm_epsilon"),
        (n_embd % n_head == 0, "n_head"),
    ]
    bad = [f"{key}={hf.get(key)!r}" for ok, key in checks if not ok]
    if bad:
        raise MiniGPTError(
            f"{folder} uses a GPT-2 variant minigpt's model does not compute: {', '.join(bad)}"
        )
    ours = hf.get(MINIGPT_KEY) or {}
    return ModelConfig(
        vocab_size=int(hf.get("vocab_size", 50257)),
        block_size=int(hf.get("n_positions", 1024)),
        n_layer=int(hf.get("n_layer", 12)),
        n_head=n_head,
        n_embd=n_embd,
        dropout=float(hf.get("resid_pdrop", 0.0)),
        bias=bool(ours.get("bias", True)),
        tie_embeddings=bool(hf.get("tie_word_embeddings", True)),
    )


def read_hf_tensors(folder: Path) -> dict[str, torch.Tensor]:
    """All tensors of a folder's ``model.safetensors`` (or its shards). Never a pickle."""
    index = folder / HF_WEIGHTS_INDEX
    if index.is_file():
        weight_map = json.loads(index.read_text(encoding="utf-8")).get("weight_map", {})
        files = sorted(set(weight_map.values()))
    elif (folder / HF_WEIGHTS_FILE).is_file():
        files = [HF_WEIGHTS_FILE]
    elif any(folder.glob("*.bin")):
        raise MiniGPTError(
            f"{folder} holds its weights only as pytorch_model.bin, a pickle, which minigpt never "
            "loads; convert it once with transformers: AutoModelForCausalLM.from_pretrained(DIR)"
            ".save_pretrained(DIR) writes model.safetensors"
        )
    else:
        raise MiniGPTError(f"{folder} holds no {HF_WEIGHTS_FILE}; pass a complete model folder")
    tensors: dict[str, torch.Tensor] = {}
    for name in files:
        try:
            tensors.update(load_file(folder / name))
        except (SafetensorError, OSError) as e:
            raise MiniGPTError(f"{folder / name} is unreadable ({e})") from None
    return tensors


def expected_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Parameter shapes of minigpt's GPT for ``config``, without allocating it (meta device)."""
    with torch.device("meta"):
        model = GPT(config)
    state = model.state_dict()
    if config.tie_embeddings:
        state.pop("lm_head.weight")
    return {k: tuple(v.shape) for k, v in state.items()}


def from_hf_tensors(
    tensors: dict[str, torch.Tensor], config: ModelConfig, folder: Path | str = "the model"
) -> dict[str, torch.Tensor]:
    """GPT-2 weights -> minigpt weights in float32, for ``config`` (whose block_size may be
    smaller than the model's n_positions: the first position embeddings are kept)."""
    out: dict[str, torch.Tensor] = {}
    for name, tensor in tensors.items():
        if name.endswith(MASK_BUFFERS):
            continue
        if not name.startswith(("transformer.", "lm_head.")):
            name = "transformer." + name  # saved from GPT2Model, as the original gpt2 weights are
        if name.endswith(CONV1D_WEIGHTS):
            tensor = tensor.t()
        out[name] = tensor.to(torch.float32).contiguous()
    if config.tie_embeddings:
        out.pop("lm_head.weight", None)
    if not config.bias:
        biases = [k for k in out if k.endswith(".bias")]
        if any(out[k].count_nonzero() for k in biases):
            raise MiniGPTError(
                f"{folder}'s config.json says bias=False, but its biases are not zero; "
                f"remove the {MINIGPT_KEY!r} entry from config.json to import it with biases"
            )
        for k in biases:
            del out[k]
    if "transformer.wpe.weight" in out:
        out["transformer.wpe.weight"] = out["transformer.wpe.weight"][: config.block_size].clone()
    shapes = expected_shapes(config)
    missing = sorted(set(shapes) - set(out))
    unexpected = sorted(set(out) - set(shapes))
    wrong = [k for k in shapes if k in out and tuple(out[k].shape) != shapes[k]]
    if missing or unexpected or wrong:
        detail = (
            f"missing {missing[:3]}"
            if missing
            else f"unexpected {unexpected[:3]}"
            if unexpected
            else f"{wrong[0]} has shape {tuple(out[wrong[0]].shape)}, not {shapes[wrong[0]]}"
        )
        raise MiniGPTError(f"the weights in {folder} do not fit its config.json ({detail})")
    return out


# -- entry points: sample/eval, train --init-from, prepare --tokenizer -------------------------


@dataclass
class HFModel:
    """A GPT-2-family folder read for minigpt: config, float32 weights and tokenizer."""

    folder: Path
    config: ModelConfig
    tensors: dict[str, torch.Tensor]
    tokenizer: Tokenizer

    def build(self) -> GPT:
        """minigpt's GPT with these weights (float32, CPU, eval mode)."""
        model = GPT(self.config)
        load_model_state(model, self.tensors)
        return model.eval()


def load_hf(ref: str | Path, block_size: int | None = None) -> HFModel:
    """Read ``hf:DIR`` (or DIR); ``block_size`` below n_positions keeps the first positions."""
    folder = hf_folder(ref)
    config = model_config_from_hf(read_hf_config(folder), folder)
    if block_size is not None:
        config.block_size = min(block_size, config.block_size)
    tensors = from_hf_tensors(read_hf_tensors(folder), config, folder)
    return HFModel(folder, config, tensors, tokenizer_from_hf(folder))


def load_hf_model(ref: str | Path) -> tuple[GPT, Tokenizer]:
    """minigpt's GPT (float32, CPU, eval mode) and tokenizer for a Hugging Face folder."""
    hf = load_hf(ref)
    return hf.build(), hf.tokenizer


def adopt_hf_model(
    ref: str | Path,
    config: ModelConfig,
    tokenizer_fingerprint: str | None,
    log: Callable[[str], None] = print,
) -> HFModel:
    """Start a run from ``hf:DIR``: the model's shape replaces ``config``'s.

    Kept from ``config``: dropout, and block_size when it is below the model's n_positions
    (fine-tuning on a shorter context). Every other model option takes its default, the
    classic GPT-2 architecture. The dataset must use the model's tokenizer.
    """
    hf = load_hf(ref, block_size=config.block_size)
    positions = model_config_from_hf(read_hf_config(hf.folder)).block_size
    if tokenizer_fingerprint and hf.tokenizer.fingerprint() != tokenizer_fingerprint:
        raise MiniGPTError(
            f"the dataset was not prepared with the tokenizer of {hf.folder}; prepare it with "
            f"`minigpt prepare YOUR_TEXT --tokenizer hf:{hf.folder} --out DATASET`"
        )
    hf.config.dropout = config.dropout
    c = hf.config
    log(
        f"init from {hf.folder}: {c.n_layer} layers, {c.n_head} heads, {c.n_embd} wide, "
        f"vocab {c.vocab_size}, block_size {c.block_size} (of its {positions} positions), "
        f"biases {'yes' if c.bias else 'no'}, head {'tied' if c.tie_embeddings else 'untied'}"
    )
    return hf
