"""The Hugging Face format, read into minigpt: ``hf:DIR`` for every architecture minigpt
exports, and the choice of architecture for an export.

One ``HFArchitecture`` per transformers class (``hf_gpt2``: GPT-2; ``hf_llama``: Llama, Qwen3,
Arcee; ``hf_remote``: minigpt's own model as remote code) maps the config and the weights
both ways; this module picks the one a ``config.json`` names (reading) or the one that
computes a ``ModelConfig`` exactly (writing, ``choose_architecture``).

Reading needs only ``safetensors`` and ``json``; nothing here needs ``transformers``. Nothing
is ever downloaded: ``hf:DIR`` is a folder on disk.
"""

from __future__ import annotations

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
from minigpt.interop.hf_base import HFArchitecture, Tensors
from minigpt.interop.hf_gpt2 import GPT2
from minigpt.interop.hf_llama import ARCEE, LLAMA, QWEN3
from minigpt.interop.hf_remote import REMOTE
from minigpt.model import GPT
from minigpt.model.sizing import check_load_ram

HF_WEIGHTS_FILE = "model.safetensors"
HF_WEIGHTS_INDEX = "model.safetensors.index.json"
# Exact transformers classes first, in order of preference; remote code is the fallback.
EXACT = (GPT2, LLAMA, QWEN3, ARCEE)
BY_MODEL_TYPE = {a.model_type: a for a in (*EXACT, REMOTE)}


# -- minigpt -> Hugging Face -------------------------------------------------------------------


def choose_architecture(config: ModelConfig, remote_code: bool = True) -> HFArchitecture:
    """The transformers class that computes ``config``'s GPT exactly, or else (``remote_code``)
    minigpt's own model as remote code. Raises MiniGPTError naming the blocking options."""
    if config.vocab_size <= 0:
        raise MiniGPTError("the model's vocab_size is not set; export a trained checkpoint")
    for arch in EXACT:
        if not arch.blockers(config):
            return arch
    if remote_code and not REMOTE.blockers(config):
        return REMOTE
    closest = closest_architecture(config, EXACT)
    way_out = (
        "export with remote code (drop --no-remote-code), or train with the options it has"
        if remote_code is False and not REMOTE.blockers(config)
        else "no exporter implements them yet"
    )
    raise MiniGPTError(
        f"no transformers class computes this model exactly: the closest, {closest.name}, "
        f"cannot express its {', '.join(closest.blockers(config))}; {way_out}"
    )


def closest_architecture(
    config: ModelConfig, candidates: tuple[HFArchitecture, ...]
) -> HFArchitecture:
    """The candidate that would need the fewest of ``config``'s options changed."""
    return min(candidates, key=lambda a: len(a.blockers(config)))


def hf_architecture(config: ModelConfig, remote_code: bool = True) -> dict[str, Any]:
    """The ``config.json`` (without token ids) of the architecture ``config`` exports to."""
    return choose_architecture(config, remote_code).config(config)


def to_hf_tensors(state: Tensors, config: ModelConfig, remote_code: bool = True) -> Tensors:
    """minigpt weights (as in its checkpoints) -> the chosen architecture's weights."""
    return choose_architecture(config, remote_code).to_hf(state, config)


# -- Hugging Face -> minigpt -------------------------------------------------------------------


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


def architecture_of(hf: dict[str, Any], folder: Path | str = "the model") -> HFArchitecture:
    """The mapping for a ``config.json``'s model_type; other model types are refused."""
    model_type = hf.get("model_type")
    if model_type not in BY_MODEL_TYPE:
        names = ", ".join(repr(t) for t in BY_MODEL_TYPE)
        raise MiniGPTError(
            f"{folder} is a {model_type!r} model; minigpt imports the architectures it exports "
            f"(model_type {names}): GPT-2, Llama, Qwen3, Arcee and its own remote code"
        )
    return BY_MODEL_TYPE[model_type]


def model_config_from_hf(hf: dict[str, Any], folder: Path | str = "the model") -> ModelConfig:
    """The ModelConfig of a ``config.json``; refuses variants minigpt's GPT cannot run."""
    return architecture_of(hf, folder).model_config(hf, str(folder))


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


def from_hf_tensors(
    tensors: Tensors,
    config: ModelConfig,
    folder: Path | str = "the model",
    model_type: str = "gpt2",
) -> Tensors:
    """A ``model_type`` folder's weights -> minigpt weights in float32, for ``config`` (whose
    block_size may be below the folder's: learned positions keep their first rows)."""
    return BY_MODEL_TYPE[model_type].from_hf(tensors, config, str(folder))


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
    hf = read_hf_config(folder)
    arch = architecture_of(hf, folder)
    config = arch.model_config(hf, str(folder))
    if block_size is not None:
        config.block_size = min(block_size, config.block_size)
    check_load_ram(config, str(folder), "hf")
    tensors = arch.from_hf(read_hf_tensors(folder), config, str(folder))
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
    (fine-tuning on a shorter context). Every other model option is the folder's (its
    architecture: GPT-2, Llama, Qwen3, Arcee or minigpt's remote code). The dataset must use
    the model's tokenizer.
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
