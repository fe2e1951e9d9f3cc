"""Reading a chat dataset: batches of whole conversations with targets only on the replies.

Targets outside the replies are ``IGNORE`` (-100, what ``F.cross_entropy`` skips), so the loss
is the mean over reply tokens only. Two ways to fill a batch:

- **padding** (the default): each row is one random conversation, padded to the longest row of
  the batch;
- **packing**: each row starts at a random conversation and takes the ones after
  it until ``block_size + 1`` tokens are filled (the last one may be cut). ``segments`` numbers
  the conversations of each row: the model keeps attention inside a conversation and restarts
  positions at its first token, so a packed row trains exactly like its conversations one by
  one. On CPU the explicit attention mask makes a step about twice as slow as padding's causal
  kernel, which outweighs the padding saved (BENCHMARKS.md); on long blocks of short
  conversations, or GPUs, packing may win: measure with ``benchmarks/sft.py``.

Like the text dataset, which conversations a batch holds depends only on the generator from
``batch_rng``: a resumed run reads the same batches.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from minigpt.data.chat_prepare import MASK_SUFFIX, OFFSETS_SUFFIX, is_chat_meta
from minigpt.data.dataset import Dataset
from minigpt.data.meta import DatasetMeta
from minigpt.data.tokenizer import Tokenizer
from minigpt.errors import MiniGPTError

IGNORE = -100
BATCHING = ("pack", "pad")


class ChatSplit:
    """One split: tokens, the reply mask and the conversation boundaries."""

    def __init__(self, folder: Path, name: str, tokens: np.memmap) -> None:
        self.tokens = tokens
        mask_path, offsets_path = (
            folder / f"{name}{MASK_SUFFIX}",
            folder / f"{name}{OFFSETS_SUFFIX}",
        )
        for path in (mask_path, offsets_path):
            if not path.is_file():
                raise MiniGPTError(f"{path} is missing; prepare the chat dataset again")
        self.mask = np.memmap(mask_path, dtype=np.uint8, mode="r")
        self.offsets = np.fromfile(offsets_path, dtype="<i8")
        if len(self.mask) != len(tokens) or self.offsets[-1] != len(tokens):
            raise MiniGPTError(f"{folder} has a {name} mask that does not match its tokens")

    @property
    def conversations(self) -> int:
        return len(self.offsets) - 1

    def conversation(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        a, b = self.offsets[i], self.offsets[i + 1]
        return self.tokens[a:b].astype(np.int64), self.mask[a:b].astype(bool)


class ChatDataset:
    """A dataset folder prepared with ``minigpt prepare --format chat``.

    It answers what training asks of a text ``Dataset`` (``meta``, ``folder``, ``vocab_size``,
    ``tokenizer()``, ``check_block_size``, ``get_batch``), with batches made by ``batching``.
    """

    def __init__(self, data: Dataset | str | Path, batching: str = "pad") -> None:
        if batching not in BATCHING:
            raise MiniGPTError(
                f"chat batching must be one of {', '.join(BATCHING)}, not {batching!r}"
            )
        self.batching = batching
        self.data = data if isinstance(data, Dataset) else Dataset(data)
        if not is_chat_meta(self.data.meta):
            raise MiniGPTError(
                f"{self.data.folder} is a text dataset, not a chat dataset; prepare "
                "conversations with `minigpt prepare --format chat`"
            )
        self.splits = {
            name: ChatSplit(self.data.folder, name, split.shards[0])
            for name, split in self.data.splits.items()
        }

    @property
    def meta(self) -> DatasetMeta:
        return self.data.meta

    @property
    def folder(self) -> Path:
        return self.data.folder

    @property
    def vocab_size(self) -> int:
        return self.data.vocab_size

    def tokenizer(self) -> Tokenizer:
        return self.data.tokenizer()

    def check_block_size(self, block_size: int) -> None:
        """Any block holds a reply: conversations were cut to fit when prepared."""
        if block_size < 2:
            raise MiniGPTError(f"block_size {block_size} is too small for conversations")

    @property
    def reply_stats(self) -> dict:
        """Reply tokens and bytes per split (for bits per byte on the replies)."""
        return self.data.meta.report["replies"]

    def get_batch(
        self,
        split: str,
        batch_size: int,
        block_size: int,
        rng: np.random.Generator,
    ) -> tuple[torch.Tensor, ...]:
        """Inputs (B, T), targets with IGNORE outside replies, and (packing) segments (B, T)."""
        data = self.splits[split]
        starts = rng.integers(0, data.conversations, size=batch_size)
        if self.batching == "pad":
            return pad_rows([data.conversation(int(i)) for i in starts], block_size)
        return pack_rows(data, starts, block_size)

    def conversations(self, split: str) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Every conversation of a split in order: ids and reply mask."""
        data = self.splits[split]
        for i in range(data.conversations):
            yield data.conversation(i)


def _targets(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return np.where(mask[1:], ids[1:], IGNORE)


def pad_rows(
    rows: list[tuple[np.ndarray, np.ndarray]], block_size: int
) -> tuple[torch.Tensor, ...]:
    """One conversation per row, padded at the end (padding is never a target)."""
    rows = [(ids[: block_size + 1], mask[: block_size + 1]) for ids, mask in rows]
    width = max(len(ids) for ids, _ in rows) - 1
    x = np.zeros((len(rows), width), dtype=np.int64)
    y = np.full((len(rows), width), IGNORE, dtype=np.int64)
    for r, (ids, mask) in enumerate(rows):
        x[r, : len(ids) - 1] = ids[:-1]
        y[r, : len(ids) - 1] = _targets(ids, mask)
    return torch.from_numpy(x), torch.from_numpy(y)


def pack_rows(split: ChatSplit, starts: np.ndarray, block_size: int) -> tuple[torch.Tensor, ...]:
    """Rows of consecutive conversations from each start, with their segment numbers."""
    n, length = split.conversations, block_size + 1
    x = np.zeros((len(starts), block_size), dtype=np.int64)
    y = np.full((len(starts), block_size), IGNORE, dtype=np.int64)
    seg = np.zeros((len(starts), block_size), dtype=np.int64)
    for r, start in enumerate(starts):
        ids, mask, segs, filled, k = [], [], [], 0, 0
        while filled < length and k < n:
            i, m = split.conversation(int((start + k) % n))
            ids.append(i)
            mask.append(m)
            segs.append(np.full(len(i), k))
            filled, k = filled + len(i), k + 1
        row, m, s = (np.concatenate(a)[:length] for a in (ids, mask, segs))
        t = _targets(row, m)
        t[s[1:] != s[:-1]] = IGNORE  # never predict the next conversation's first token
        x[r, : len(row) - 1], y[r, : len(row) - 1] = row[:-1], t
        seg[r, : len(row) - 1] = s[:-1]
        seg[r, len(row) - 1 :] = k  # a short row's padding is its own segment
    return torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(seg)
