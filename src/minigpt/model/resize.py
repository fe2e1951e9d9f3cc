"""Growing a model's vocabulary when its tokenizer gains special tokens (chat turns).

Old rows are copied bit for bit, so every existing token behaves exactly as before. Each new
row starts at the mean of the old rows: a token that is "average" to the model, instead of a
random vector that could be far larger or smaller than the trained ones and make the first
steps of fine-tuning jump. An untied output head grows the same way (and a tied one follows
the embedding).
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn as nn

from minigpt.model.gpt import GPT


def _grown(weight: torch.Tensor, rows: int) -> torch.Tensor:
    extra = weight.mean(dim=0, keepdim=True).expand(rows - weight.size(0), -1)
    return torch.cat([weight, extra.to(weight.dtype)], dim=0)


@torch.no_grad()
def resize_vocab(model: GPT, vocab_size: int) -> GPT:
    """Grow ``model`` in place to ``vocab_size`` tokens; returns it (no-op when not larger)."""
    old = model.config.vocab_size
    if vocab_size <= old:
        return model
    wte = model.transformer.wte
    w = wte.weight
    new_wte = nn.Embedding(vocab_size, wte.embedding_dim, device=w.device, dtype=w.dtype)
    new_wte.weight.copy_(_grown(wte.weight, vocab_size))
    model.transformer.wte = new_wte
    head = model.lm_head
    h = head.weight
    new_head = nn.Linear(head.in_features, vocab_size, bias=False, device=h.device, dtype=h.dtype)
    if model.config.tie_embeddings:
        new_head.weight = new_wte.weight
    else:
        new_head.weight.copy_(_grown(head.weight, vocab_size))
    model.lm_head = new_head
    model.config = dataclasses.replace(model.config, vocab_size=vocab_size)
    return model


VOCAB_ROWS = ("transformer.wte.weight", "lm_head.weight")


@torch.no_grad()
def grow_vocab_tensors(
    tensors: dict[str, torch.Tensor], vocab_size: int
) -> dict[str, torch.Tensor]:
    """A checkpoint's weights with the token embedding (and an untied head) grown to
    ``vocab_size`` rows, the way ``resize_vocab`` grows a model: for loading into a larger one."""
    out = dict(tensors)
    for name in VOCAB_ROWS:
        if name in out and out[name].size(0) < vocab_size:
            out[name] = _grown(out[name], vocab_size)
    return out
