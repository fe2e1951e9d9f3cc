"""``minigpt export --format hf``: a run or checkpoint as a Hugging Face model folder.

The folder loads with ``AutoModelForCausalLM.from_pretrained(DIR)`` and
``AutoTokenizer.from_pretrained(DIR)``, offline, and holds:

- ``config.json``: the transformers class that computes the model exactly (GPT-2, Llama,
  Qwen3 or Arcee: ``choose_architecture`` in ``hf_import``), or else minigpt's own model as
  remote code, with ``modeling_minigpt.py`` and ``configuration_minigpt.py`` beside it;
- ``model.safetensors``: the weights, in float32 unless asked otherwise;
- ``tokenizer.json`` + ``tokenizer_config.json``: a fast tokenizer that encodes as minigpt's
  (with the chat template, when the tokenizer has one: ``data/hf_tokenizer.py``);
- ``generation_config.json``: ``minigpt sample``'s sampling defaults;
- ``README.md``: a model card with the architecture and the training summary.

It is written to a temporary folder and renamed at the end. Where transformers is installed,
the export is then checked (``hf_check``): logits, greedy generation, weights, tokenizer.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from minigpt.checkpoint import model_state
from minigpt.config import RunConfig
from minigpt.config.sampling import SampleConfig
from minigpt.data.chat_template import reply_stop_ids
from minigpt.data.hf_tokenizer import (
    HF_CONFIG_FILE,
    HF_TOKENIZER_CONFIG,
    tokenizer_config,
    tokenizer_json,
)
from minigpt.data.meta import check_output_folder
from minigpt.data.tokenizer import TOKENIZER_FILE, CharTokenizer, Tokenizer
from minigpt.errors import MiniGPTError
from minigpt.interop.formats import HF_DTYPES
from minigpt.interop.hf_base import HFArchitecture
from minigpt.interop.hf_check import (
    LOGITS_TOLERANCE,
    check_hf_folder,
    transformers_available,
    transformers_too_old,
)
from minigpt.interop.hf_gpt2 import GPT2
from minigpt.interop.hf_import import HF_WEIGHTS_FILE, choose_architecture
from minigpt.interop.hf_remote import remote_code_files
from minigpt.interop.loader import open_model
from minigpt.interop.model_card import model_card

__all__ = ["LOGITS_TOLERANCE", "ExportResult", "export_hf"]

DTYPES = {name: getattr(torch, name) for name in HF_DTYPES}
GENERATION_CONFIG = "generation_config.json"
MODEL_CARD = "README.md"


@dataclass
class ExportResult:
    folder: Path
    checkpoint: Path
    iteration: int
    files: list[str]
    notes: list[str] = field(default_factory=list)
    max_logit_diff: float | None = None  # None: transformers not installed, or not checked
    architecture: str = ""


def export_hf(
    source: str | Path,
    out: str | Path,
    *,
    dtype: str = "float32",
    force: bool = False,
    check: bool = True,
    best: bool = False,
    remote_code: bool = True,
) -> ExportResult:
    """Write the newest good checkpoint of ``source`` (``best``: the one with the lowest val
    loss), or the checkpoint ``source`` names, to ``out``. ``remote_code=False`` refuses
    models no transformers class computes exactly, instead of shipping minigpt's code."""
    if dtype not in DTYPES:
        raise MiniGPTError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    out = Path(out)
    loaded = open_model(source, "cpu", best=best, hf=False)
    ckpt, config, tokenizer = loaded.checkpoint, loaded.config, loaded.tokenizer
    assert ckpt is not None and config is not None  # hf=False: always a minigpt checkpoint
    arch = choose_architecture(config.model, remote_code)
    weights = model_state(loaded.model)
    tensors = arch.to_hf(weights, config.model)
    tensors = {k: v.to(DTYPES[dtype]).contiguous() for k, v in tensors.items()}
    eot = tokenizer.eot_id
    files: dict[str, Any] = {
        HF_CONFIG_FILE: {
            **arch.config(config.model),
            "bos_token_id": eot,
            "eos_token_id": eot,
            "torch_dtype": dtype,
        },
        GENERATION_CONFIG: generation_config(tokenizer, config.model.block_size),
        TOKENIZER_FILE: tokenizer_json(tokenizer),
        HF_TOKENIZER_CONFIG: tokenizer_config(tokenizer, config.model.block_size),
    }
    code = remote_code_files() if arch.remote_code else {}
    notes = export_notes(config, tokenizer, arch)
    check_output_folder(out, force)
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        save_file(tensors, tmp / HF_WEIGHTS_FILE, metadata={"format": "pt"})
        for name, content in files.items():
            text = json.dumps(content, indent=2, ensure_ascii=False) + "\n"
            (tmp / name).write_text(text, encoding="utf-8")
        for name, text in code.items():
            (tmp / name).write_text(text, encoding="utf-8")
        card = model_card(ckpt, config, tokenizer, dtype, notes, out, arch)
        (tmp / MODEL_CARD).write_text(card, encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    names = sorted([HF_WEIGHTS_FILE, MODEL_CARD, *files, *code])
    result = ExportResult(out, ckpt.path, ckpt.iteration, names, notes, architecture=arch.name)
    old = transformers_too_old() if check and transformers_available() else None
    if old:  # the class may be missing: say so instead of a failed check
        result.notes.append(f"not checked: {old}")
    elif check and transformers_available():
        exact = weights if dtype == "float32" else None
        result.max_logit_diff = check_hf_folder(out, tokenizer, exact)
    return result


def generation_config(tokenizer: Tokenizer, block_size: int) -> dict[str, Any]:
    """Sample as ``minigpt sample`` does; stop at the context length, past which minigpt's
    model has no positions."""
    defaults = SampleConfig()
    config: dict[str, Any] = {
        "do_sample": True,
        "temperature": defaults.temperature,
        "top_k": defaults.top_k,
        "max_length": block_size,
    }
    if tokenizer.eot_id is not None:
        config.update(
            bos_token_id=tokenizer.eot_id,
            eos_token_id=tokenizer.eot_id,
            pad_token_id=tokenizer.eot_id,
        )
    if tokenizer.chat_template is not None:  # a chat-tuned model also stops at end of turn
        config["eos_token_id"] = reply_stop_ids(tokenizer)
    return config


def export_notes(config: RunConfig, tokenizer: Tokenizer, arch: HFArchitecture) -> list[str]:
    """What a user of the exported model should know that config.json does not say."""
    m = config.model
    notes = []
    if not m.bias and arch is GPT2:
        notes.append(
            "trained without biases; GPT-2 always has them, so they are exported as zeros "
            "(the same function); `minigpt` drops them again on import"
        )
    if arch.remote_code:
        notes.append(
            "no transformers class computes these options exactly; load with "
            "trust_remote_code=True (the code is in this folder and runs offline)"
        )
    if isinstance(tokenizer, CharTokenizer):
        unknown = (
            "become `<unk>` (the literal text `<unk>` is read as that token too)"
            if tokenizer.unk_id is not None
            else "are dropped by the transformers tokenizer (minigpt refuses them)"
        )
        notes.append(f"one token per character; characters outside the vocabulary {unknown}")
    if tokenizer.eot_id is None:
        notes.append("no end-of-text token: generation stops at max_new_tokens or max_length")
    if m.pos == "learned":
        notes.append(
            f"learned position embeddings: prompt plus generated tokens must fit in "
            f"{m.block_size} tokens"
        )
    else:
        notes.append(f"trained on {m.block_size}-token contexts (rotary positions)")
    return notes
