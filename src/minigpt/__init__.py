"""minigpt: train a GPT language model from scratch on your own text.

The pipeline, one module per stage:

    prepare (text -> tokenizer + token shards) -> dataset (batches) -> model -> train
    -> checkpoint -> sample

Every stage is also a CLI command: ``minigpt prepare | train | sample | chat | demo``.
Fine-tuning on conversations: ``prepare_chat_dataset``, ``train`` with the ``sft`` preset,
``chat_completion`` (docs/sft.md).

The names below are loaded on first use (PEP 562), not here: importing torch and every stage
takes about two seconds, and ``import minigpt`` (which every ``minigpt`` command and every
``import minigpt.x`` runs first) should not pay that for a name it never touches. The torch
floor is checked on that first use, before the stage's module is imported.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from minigpt._version import __version__, require_torch

# Public name -> the module that defines it.
_SOURCES = {
    "GPT": "minigpt.model",
    "CharTokenizer": "minigpt.data.tokenizer",
    "ChatReply": "minigpt.inference.chat_completion",
    "MiniGPTError": "minigpt.errors",
    "ProbeConfig": "minigpt.sweep.tokenizer_probe",
    "ModelConfig": "minigpt.config",
    "RunConfig": "minigpt.config",
    "SampleConfig": "minigpt.config.sampling",
    "Tokenizer": "minigpt.data.tokenizer",
    "TrainConfig": "minigpt.config",
    "chat_completion": "minigpt.inference.chat_completion",
    "generate_samples": "minigpt.inference.generate",
    "generate_text": "minigpt.inference.generate",
    "load_config": "minigpt.config",
    "load_model": "minigpt.interop.loader",
    "load_tokenizer": "minigpt.data.tokenizer",
    "prepare_auto": "minigpt.sweep.tokenizer_probe",
    "prepare_chat_dataset": "minigpt.data.chat_prepare",
    "prepare_dataset": "minigpt.data.prepare",
    "probe_tokenizers": "minigpt.sweep.tokenizer_probe",
    "stream_chat": "minigpt.inference.chat_completion",
    "stream_text": "minigpt.inference.generate",
    "train": "minigpt.training.trainer",
}

# Modules that never import torch (tests/test_lazy_import.py holds them to it): their names
# skip the floor check, so ``from minigpt import load_config`` stays cheap.
TORCH_FREE = frozenset(
    {
        "minigpt.config",
        "minigpt.config.sampling",
        "minigpt.data.chat_prepare",
        "minigpt.data.prepare",
        "minigpt.data.tokenizer",
        "minigpt.errors",
    }
)

__all__ = [
    "GPT",
    "CharTokenizer",
    "ChatReply",
    "MiniGPTError",
    "ProbeConfig",
    "ModelConfig",
    "RunConfig",
    "SampleConfig",
    "Tokenizer",
    "TrainConfig",
    "__version__",
    "chat_completion",
    "generate_samples",
    "generate_text",
    "load_config",
    "load_model",
    "load_tokenizer",
    "prepare_auto",
    "prepare_chat_dataset",
    "prepare_dataset",
    "probe_tokenizers",
    "stream_chat",
    "stream_text",
    "train",
]


def __getattr__(name: str) -> Any:
    """Import the module behind a public name on its first use, then keep the name here so
    later lookups are plain attribute reads."""
    module = _SOURCES.get(name)
    if module is None:
        raise AttributeError(f"module 'minigpt' has no attribute {name!r}")
    if module not in TORCH_FREE:
        require_torch()  # an older torch fails in one line, not deep inside the stage
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # what type checkers and IDEs see; nothing is imported at run time
    from minigpt.config import ModelConfig, RunConfig, TrainConfig, load_config
    from minigpt.config.sampling import SampleConfig
    from minigpt.data.chat_prepare import prepare_chat_dataset
    from minigpt.data.prepare import prepare_dataset
    from minigpt.data.tokenizer import CharTokenizer, Tokenizer, load_tokenizer
    from minigpt.errors import MiniGPTError
    from minigpt.inference.chat_completion import ChatReply, chat_completion, stream_chat
    from minigpt.inference.generate import generate_samples, generate_text, stream_text
    from minigpt.interop.loader import load_model
    from minigpt.model import GPT
    from minigpt.sweep.tokenizer_probe import ProbeConfig, prepare_auto, probe_tokenizers
    from minigpt.training.trainer import train
