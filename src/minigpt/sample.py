"""``minigpt sample``: load a checkpoint and generate text, streamed as it is produced."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from minigpt.checkpoint import find_checkpoint, load_model_state
from minigpt.config import config_from_dict
from minigpt.errors import MiniGPTError
from minigpt.hf import is_hf_ref, load_hf_model
from minigpt.model import GPT, sample_next
from minigpt.tokenizer import Tokenizer
from minigpt.train import resolve_device


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


def prompt_ids(tokenizer: Tokenizer, prompt: str) -> list[int]:
    """Encode the prompt; an empty prompt starts from the end-of-document token or a newline."""
    if prompt:
        return tokenizer.encode(prompt)
    if tokenizer.eot_id is not None:
        return [tokenizer.eot_id]
    try:
        return tokenizer.encode("\n")
    except MiniGPTError:
        return [0]


class StreamDecoder:
    """Turns a growing list of ids into text pieces, holding back incomplete characters.

    A byte-level token can end in the middle of a multi-byte UTF-8 character; its text is
    only emitted once the character is complete (no U+FFFD at the end of the decoded text).
    """

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self.emitted = 0

    def push(self, token_id: int) -> str:
        self.ids.append(token_id)
        text = self.tokenizer.decode(self.ids)
        if text.endswith("\ufffd"):
            return ""
        piece, self.emitted = text[self.emitted :], len(text)
        return piece

    def flush(self) -> str:
        text = self.tokenizer.decode(self.ids)
        piece, self.emitted = text[self.emitted :], len(text)
        return piece


@torch.no_grad()
def stream_tokens(
    model: GPT,
    ids: list[int],
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int | None = None,
) -> Iterator[int]:
    """Yield new token ids one at a time."""
    device = next(model.parameters()).device
    generator = torch.Generator(device=device)
    if seed is not None:
        generator.manual_seed(seed)
    else:
        generator.seed()
    idx = torch.tensor([ids], dtype=torch.long, device=device)
    for _ in range(max_new_tokens):
        logits, _ = model(idx[:, -model.config.block_size :])
        next_id = sample_next(logits[:, -1, :], temperature, top_k, generator)
        idx = torch.cat((idx, next_id), dim=1)
        yield int(next_id.item())


def generate_text(
    model: GPT,
    tokenizer: Tokenizer,
    prompt: str = "",
    max_new_tokens: int = 200,
    temperature: float = 0.8,
    top_k: int | None = 200,
    seed: int | None = 1337,
    on_text: Callable[[str], None] | None = None,
) -> str:
    """Generate one continuation of ``prompt``; ``on_text`` receives pieces as they come."""
    if max_new_tokens < 0:
        raise MiniGPTError(f"max new tokens must be >= 0, got {max_new_tokens}")
    if temperature < 0:
        raise MiniGPTError(f"temperature must be >= 0, got {temperature}")
    if top_k is not None and top_k <= 0:
        raise MiniGPTError(f"top-k must be positive, got {top_k}")
    decoder = StreamDecoder(tokenizer)
    pieces = []
    for token in stream_tokens(
        model, prompt_ids(tokenizer, prompt), max_new_tokens, temperature, top_k, seed
    ):
        piece = decoder.push(token)
        if piece:
            pieces.append(piece)
            if on_text:
                on_text(piece)
    tail = decoder.flush()
    if tail:
        pieces.append(tail)
        if on_text:
            on_text(tail)
    return prompt + "".join(pieces)
