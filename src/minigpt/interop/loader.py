"""The one model loader: whatever names a model (a run folder, a checkpoint folder, or a
Hugging Face folder as ``hf:DIR``) becomes a GPT and its tokenizer, ready for sampling,
evaluation, chat, serving or export."""

from __future__ import annotations

from pathlib import Path

from minigpt.checkpoint import find_checkpoint, load_model_state
from minigpt.config import config_from_dict
from minigpt.data.tokenizer import Tokenizer
from minigpt.interop.hf_import import is_hf_ref, load_hf_model
from minigpt.model import GPT
from minigpt.runtime import resolve_device


def load_model(path: str | Path, device: str = "auto") -> tuple[GPT, Tokenizer]:
    """The model (in eval mode) and tokenizer of a run, checkpoint or Hugging Face folder."""
    if is_hf_ref(path):
        model, tokenizer = load_hf_model(path)
        return model.to(resolve_device(device)), tokenizer
    ckpt = find_checkpoint(path)
    config = config_from_dict(ckpt.state["config"])
    model = GPT(config.model)
    load_model_state(model, ckpt.model_tensors())
    model.to(resolve_device(device)).eval()
    return model, ckpt.tokenizer()
