"""The one model loader: whatever names a model (a run folder, a checkpoint folder, or a
Hugging Face folder as ``hf:DIR``) becomes a GPT and its tokenizer, ready for sampling,
evaluation, chat, serving or export.

``open_model`` returns a ``LoadedModel`` that also keeps what the model came from (the
checkpoint and the run's config), which the export's model card and the evaluation need;
``load_model`` is the public short form that returns the model and its tokenizer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from minigpt.checkpoint import Checkpoint, find_checkpoint, load_model_state
from minigpt.config import RunConfig, config_from_dict
from minigpt.data.tokenizer import Tokenizer
from minigpt.interop.hf_import import is_hf_ref, load_hf_model
from minigpt.model import GPT
from minigpt.model.quantize import quantize_model
from minigpt.model.sizing import check_load_ram
from minigpt.runtime import resolve_device


@dataclass
class LoadedModel:
    """A model ready to run, with its tokenizer and where it came from."""

    model: GPT
    tokenizer: Tokenizer
    checkpoint: Checkpoint | None  # None: read from a Hugging Face folder
    config: RunConfig | None  # the run's full config; None for a Hugging Face folder


def open_model(
    path: str | Path,
    device: str = "auto",
    *,
    best: bool = False,
    hf: bool = True,
    quantize: str = "none",
) -> LoadedModel:
    """The model (in eval mode, on ``device``) named by ``path``.

    ``best``: from a run folder, the checkpoint with the lowest val loss rather than the
    newest good one. ``hf=False`` reads ``path`` as a minigpt run or checkpoint only (the
    export, whose input cannot already be a Hugging Face folder). ``quantize="int8"``: int8
    linear layers for faster CPU inference (``model/quantize.py``); with ``device="auto"``
    the model then goes to the CPU, where those kernels run.
    """
    if quantize != "none" and device == "auto":
        device = "cpu"
    if hf and is_hf_ref(path):
        model, tokenizer = load_hf_model(path)
        ckpt, config = None, None
    else:
        ckpt = find_checkpoint(path, best=best)
        config = config_from_dict(ckpt.state["config"])
        check_load_ram(config.model, str(ckpt.path))
        model = GPT(config.model)
        load_model_state(model, ckpt.model_tensors())
        tokenizer = ckpt.tokenizer()
    model.to(resolve_device(device)).eval()
    return LoadedModel(quantize_model(model, quantize), tokenizer, ckpt, config)


def load_model(
    path: str | Path, device: str = "auto", quantize: str = "none"
) -> tuple[GPT, Tokenizer]:
    """The model (in eval mode) and tokenizer of a run, checkpoint or Hugging Face folder."""
    loaded = open_model(path, device, quantize=quantize)
    return loaded.model, loaded.tokenizer
