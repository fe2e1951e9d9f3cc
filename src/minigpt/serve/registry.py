"""The models a server holds: each loaded once, with its own batching engine."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from minigpt.data.tokenizer import Tokenizer
from minigpt.errors import MiniGPTError
from minigpt.inference.batching import BatchEngine
from minigpt.interop.hf_import import is_hf_ref
from minigpt.interop.loader import load_model
from minigpt.model import GPT
from minigpt.serve.settings import ServeConfig


@dataclass
class ServedModel:
    """One model as the API names it (``id``), where it came from, and its engine."""

    id: str
    source: str
    model: GPT
    tokenizer: Tokenizer
    engine: BatchEngine
    created: int

    def describe(self) -> dict:
        c = self.model.config
        return {
            "id": self.id,
            "object": "model",
            "created": self.created,
            "owned_by": "minigpt",
            "source": self.source,
            "block_size": c.block_size,
            "vocab_size": c.vocab_size,
            "parameters": self.model.num_params(),
            "chat_template": getattr(self.tokenizer, "chat_template", None) is not None,
        }


def model_id(ref: str) -> str:
    """``NAME=PATH`` names a model; else the folder's name (``runs/demo`` -> ``demo``)."""
    if "=" in ref and not Path(ref).exists():
        return ref.split("=", 1)[0]
    path = ref[3:] if is_hf_ref(ref) else ref
    return Path(path).resolve().name


def model_folder(path: str) -> str:
    """A demo folder (``minigpt demo`` writes ``runs/demo/{data,run}``) stands for its run."""
    folder = Path(path)
    if is_hf_ref(path) or (folder / "checkpoints").exists():
        return path
    return str(folder / "run") if (folder / "run" / "checkpoints").is_dir() else path


def load_served(refs: list[str], config: ServeConfig) -> dict[str, ServedModel]:
    """Load every model once and start its engine; ids must be unique."""
    served: dict[str, ServedModel] = {}
    for ref in refs:
        name = model_id(ref)
        path = ref.split("=", 1)[1] if "=" in ref and not Path(ref).exists() else ref
        if name in served:
            raise MiniGPTError(f"two models are named {name!r}; name them with NAME=PATH")
        model, tokenizer = load_model(
            model_folder(path), device=config.device, quantize=config.quantize
        )
        engine = BatchEngine(model, tokenizer, config.max_batch, config.max_queue)
        served[name] = ServedModel(name, str(path), model, tokenizer, engine, int(time.time()))
    return served
