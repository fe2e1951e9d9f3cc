"""Training batches prepared ahead on a background thread, so data loading never stalls the GPU.

The batches of a run are a pure function of ``(seed, step, micro_step)`` (see
``dataset.batch_rng``), so a worker thread can read them ahead in order while the model is
busy, and the run still sees exactly the batches it would read synchronously: exact resume is
unaffected. On CUDA the batches are copied into pinned (page-locked) memory, which lets the
host-to-device copy run asynchronously (``non_blocking=True``).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

import torch

Batch = tuple[torch.Tensor, ...]  # inputs, targets (and, for packed conversations, segments)


class BatchPrefetcher:
    """Reads ``make(step, micro)`` for step = start, start + 1, ... ahead of time.

    ``get(step, micro)`` returns the batch already on ``device``. Asking for anything other than
    the next batch in order (after a skipped step, say) restarts the worker there.
    """

    def __init__(
        self,
        make: Callable[[int, int], Batch],
        grad_accum: int,
        device: torch.device,
        depth: int = 4,
    ) -> None:
        self.make = make
        self.grad_accum = grad_accum
        self.device = device
        self.pin = device.type == "cuda"
        self.depth = max(2, depth)
        self.thread: threading.Thread | None = None
        self.stop_event = threading.Event()
        self.queue: queue.Queue = queue.Queue()
        self.expected: tuple[int, int] | None = None

    def _worker(self, step: int, stop: threading.Event, out: queue.Queue) -> None:
        micro = 0
        while not stop.is_set():
            try:
                batch = self.make(step, micro)
                if self.pin:
                    batch = tuple(t.pin_memory() for t in batch)
                item: object = ((step, micro), batch)
            except BaseException as e:  # handed to the consumer, which re-raises it
                item = e
            while not stop.is_set():
                try:
                    out.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if isinstance(item, BaseException):
                return
            micro += 1
            if micro == self.grad_accum:
                step, micro = step + 1, 0

    def _start(self, step: int) -> None:
        self.close()
        self.stop_event = threading.Event()
        self.queue = queue.Queue(maxsize=self.depth)
        self.thread = threading.Thread(
            target=self._worker, args=(step, self.stop_event, self.queue), daemon=True
        )
        self.thread.start()
        self.expected = (step, 0)

    def get(self, step: int, micro: int) -> Batch:
        if self.expected != (step, micro):
            if micro != 0:  # mid-step restarts never happen in the loop; read it directly
                return self._to_device(self.make(step, micro))
            self._start(step)
        item = self.queue.get()
        if isinstance(item, BaseException):
            self.close()
            raise item
        key, batch = item
        assert key == (step, micro), (key, step, micro)
        self.expected = (step, micro + 1) if micro + 1 < self.grad_accum else (step + 1, 0)
        return self._to_device(batch)

    def _to_device(self, batch: Batch) -> Batch:
        return tuple(t.to(self.device, non_blocking=self.pin) for t in batch)

    def close(self) -> None:
        """Stop the worker (it exits within 0.1 s)."""
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join(timeout=5)
        self.thread = None
        self.expected = None
