"""Reading a prepared dataset: token shards as memory maps, and random training windows.

Batches are random windows of ``block_size + 1`` tokens (inputs and the same shifted by one as
targets). The shards are memory-mapped, so only the windows actually read are paged in: a
corpus of any size trains in constant RAM.

Which windows a batch holds depends only on ``(seed, step, micro_step)`` through
``batch_rng``: a resumed run reads exactly the batches an uninterrupted one would, without
saving any sampler state.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from minigpt.data.meta import META_FILE, DatasetMeta
from minigpt.data.tokenizer import Tokenizer, load_tokenizer
from minigpt.errors import MiniGPTError


def batch_rng(seed: int, split: str, step: int, micro_step: int = 0) -> np.random.Generator:
    """The generator for one batch: a pure function of where the run is."""
    return np.random.default_rng([seed, 0 if split == "train" else 1, step, micro_step])


@dataclass
class Split:
    """One split's shards, as memmaps, with each shard's number of usable window starts."""

    shards: list[np.memmap]

    @property
    def tokens(self) -> int:
        return sum(len(s) for s in self.shards)

    def windows(self, length: int) -> np.ndarray:
        return np.array([max(0, len(s) - length + 1) for s in self.shards], dtype=np.int64)


class Dataset:
    """A prepared dataset folder: ``meta.json``, ``tokenizer.json`` and token shards."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        meta_path = self.folder / META_FILE
        if not meta_path.is_file():
            raise MiniGPTError(
                f"{self.folder} is not a prepared dataset (no {META_FILE}); "
                f"run `minigpt prepare YOUR_TEXT --out {self.folder}` first"
            )
        try:
            self.meta = DatasetMeta.from_json(json.loads(meta_path.read_text(encoding="utf-8")))
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise MiniGPTError(
                f"{meta_path} is corrupted ({e}); prepare the dataset again"
            ) from None
        self.dtype = np.dtype(self.meta.dtype)
        self.splits = {name: self._open(name) for name in self.meta.splits}

    def _open(self, name: str) -> Split:
        shards = []
        for file in self.meta.splits[name].files:
            path = self.folder / file
            if not path.is_file():
                raise MiniGPTError(f"{path} is missing; prepare the dataset again")
            if path.stat().st_size % self.dtype.itemsize:
                raise MiniGPTError(f"{path} is truncated; prepare the dataset again")
            if path.stat().st_size:
                shards.append(np.memmap(path, dtype=self.dtype, mode="r"))
        return Split(shards)

    @property
    def vocab_size(self) -> int:
        return int(self.meta.tokenizer["vocab_size"])

    def tokenizer(self) -> Tokenizer:
        return load_tokenizer(self.folder / self.meta.tokenizer.get("file", "tokenizer.json"))

    def check_block_size(self, block_size: int) -> None:
        """A split must hold at least one full window of block_size + 1 tokens."""
        for name, split in self.splits.items():
            if split.windows(block_size + 1).sum() == 0:
                raise MiniGPTError(
                    f"the {name} split of {self.folder} has {split.tokens} tokens, too few for "
                    f"block_size {block_size}; use --block-size {max(1, split.tokens // 2)} "
                    "or less, or more text"
                )

    def get_batch(
        self, split: str, batch_size: int, block_size: int, rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``batch_size`` random windows: inputs (B, T) and next-token targets (B, T)."""
        data = self.splits[split]
        counts = data.windows(block_size + 1)
        starts = rng.integers(0, counts.sum(), size=batch_size)
        bounds = np.cumsum(counts)
        shard_of = np.searchsorted(bounds, starts, side="right")
        offsets = starts - (bounds - counts)[shard_of]
        rows = np.stack(
            [
                data.shards[s][o : o + block_size + 1].astype(np.int64)
                for s, o in zip(shard_of, offsets, strict=True)
            ]
        )
        rows_t = torch.from_numpy(rows)
        return rows_t[:, :-1], rows_t[:, 1:]
