"""Supervised fine-tuning: what a run on a chat dataset does differently from pretraining.

Three things, each small: the data (a chat dataset trains on the replies only, and a run has to
say it wants that: ``data_format = "chat"``, set by the ``sft`` preset, so that neither kind of
dataset is ever trained on as the other by accident); the starting weights (a run's or a
Hugging Face model's, whose tokenizer the chat dataset extended with turn tokens: the model
takes its shape from them and its embedding grows to the new vocabulary); and the batch, whose
packed conversations carry segment numbers to the model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import torch

from minigpt.checkpoint import Checkpoint
from minigpt.config import ModelConfig, config_from_dict
from minigpt.data.chat_dataset import ChatDataset
from minigpt.data.chat_prepare import is_chat_meta
from minigpt.data.dataset import Dataset
from minigpt.errors import MiniGPTError
from minigpt.model.resize import grow_vocab_tensors

DATA_FORMATS = ("text", "chat")


def open_training_data(
    folder: str | Path, data_format: str, batching: str
) -> Dataset | ChatDataset:
    """The run's dataset; a chat dataset without ``data_format = "chat"`` (or the reverse) is
    a one-line error, never a run that silently trains on the wrong tokens."""
    data = Dataset(folder)
    chat = is_chat_meta(data.meta)
    if chat and data_format != "chat":
        raise MiniGPTError(
            f"{data.folder} is a chat dataset (prepare --format chat); fine-tune on it with "
            "--preset sft or --data-format chat, which train on the replies only"
        )
    if not chat and data_format == "chat":
        raise MiniGPTError(
            f"{data.folder} is a text dataset, but this run asks for conversations "
            "(--data-format chat or --preset sft); prepare them with `minigpt prepare --format "
            "chat`, or train on text without --preset sft"
        )
    return ChatDataset(data, batching) if chat else data


def base_fingerprint(data: Dataset | ChatDataset) -> str | None:
    """The tokenizer a chat dataset's tokenizer extends (None if it was trained afresh)."""
    return (
        data.meta.extra.get("chat", {}).get("base_fingerprint") if is_chat_meta(data.meta) else None
    )


def adopt_checkpoint(
    ckpt: Checkpoint, model: ModelConfig, data: ChatDataset, log: Callable[[str], None]
) -> tuple[ModelConfig, dict[str, torch.Tensor]]:
    """Start a fine-tuning run from a minigpt checkpoint: its model shape (dropout kept from
    ``model``), and its weights with the vocabulary grown to the data's."""
    theirs = ckpt.state.get("tokenizer_fingerprint")
    if theirs and theirs not in (data.meta.tokenizer.get("fingerprint"), base_fingerprint(data)):
        raise MiniGPTError(
            f"the chat dataset {data.folder} was not prepared with the tokenizer of {ckpt.path}; "
            f"prepare it with `minigpt prepare --format chat FILES --tokenizer {ckpt.path}`"
        )
    shape = dataclasses.replace(config_from_dict(ckpt.state["config"]).model, dropout=model.dropout)
    log(
        f"init from {ckpt.path}: {shape.n_layer} layers, {shape.n_embd} wide, "
        f"block_size {shape.block_size}"
    )
    return fit_vocab(shape, ckpt.model_tensors(), data, log)


def fit_vocab(
    shape: ModelConfig,
    tensors: dict[str, torch.Tensor],
    data: Dataset | ChatDataset,
    log: Callable[[str], None],
) -> tuple[ModelConfig, dict[str, torch.Tensor]]:
    """The starting model grown to the dataset's vocabulary (new special tokens' rows at the
    mean of the old ones; every old row as it was)."""
    if data.vocab_size <= shape.vocab_size:
        return shape, tensors
    log(f"vocab {shape.vocab_size} + {data.vocab_size - shape.vocab_size} new special tokens")
    grown = dataclasses.replace(shape, vocab_size=data.vocab_size)
    return grown, grow_vocab_tensors(tensors, data.vocab_size)


def model_inputs(batch: tuple[torch.Tensor, ...]) -> tuple[tuple[torch.Tensor, ...], dict]:
    """Arguments of the model's forward for a batch: (x, y), and segments when packed."""
    x, y, *rest = batch
    return (x, y), ({"segments": rest[0]} if rest else {})
