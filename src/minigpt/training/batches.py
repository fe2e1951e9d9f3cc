"""The run's batches: which windows of the dataset each micro-batch of each step reads.

A batch is a pure function of (seed, split, step, micro-batch): ``batch_rng`` draws its
windows, so a resumed run reads exactly what the original would have read, on any number of
ranks. While the loop runs (``reading_ahead``), training batches are prepared on a background
thread (``data/prefetch.py``); evaluation reads the same ``eval_iters`` batches every time.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from minigpt.config import TrainConfig
from minigpt.data.chat_dataset import ChatDataset
from minigpt.data.dataset import Dataset, batch_rng
from minigpt.data.prefetch import BatchPrefetcher
from minigpt.training.distributed import Distributed

Batch = tuple[torch.Tensor, ...]


class Batches:
    """Inputs and next-token targets, (batch_size, block_size) each, on the run's device (and,
    for packed conversations, their segment numbers: see ``data/chat_dataset.py``)."""

    def __init__(
        self,
        data: Dataset | ChatDataset,
        cfg: TrainConfig,
        block_size: int,
        dist: Distributed,
        device: torch.device,
    ) -> None:
        self.data, self.cfg, self.block_size = data, cfg, block_size
        self.dist, self.device = dist, device
        self.prefetcher: BatchPrefetcher | None = None

    def on_cpu(self, split: str, step: int, micro: int) -> Batch:
        # distributed: each rank reads its own micro-batches of the step
        micro_index = self.dist.micro_index(micro, self.cfg.grad_accum)
        rng = batch_rng(self.cfg.seed, split, step, micro_index)
        return self.data.get_batch(split, self.cfg.batch_size, self.block_size, rng)

    def get(self, split: str, step: int, micro: int) -> Batch:
        """The micro-batch ``micro`` of step ``step``, on the device (read synchronously)."""
        return tuple(t.to(self.device) for t in self.on_cpu(split, step, micro))

    def train(self, step: int, micro: int) -> Batch:
        """A training micro-batch: read ahead while the loop runs, else read now."""
        if self.prefetcher is None:
            return self.get("train", step, micro)
        return self.prefetcher.get(step, micro)

    def eval(self, split: str, index: int) -> Batch:
        """Evaluation batch ``index`` of ``split``: the same at every evaluation of the run."""
        rng = batch_rng(self.cfg.seed + 1, split, 0, index)
        batch = self.data.get_batch(split, self.cfg.batch_size, self.block_size, rng)
        return tuple(t.to(self.device) for t in batch)

    @contextmanager
    def reading_ahead(self) -> Iterator[None]:
        """Prepare the coming training batches on a background thread while inside."""
        self.prefetcher = BatchPrefetcher(
            lambda step, micro: self.on_cpu("train", step, micro), self.cfg.grad_accum, self.device
        )
        try:
            yield
        finally:
            self.prefetcher.close()
            self.prefetcher = None
