"""Cleaning and encoding documents on every core, in order, in bounded memory.

The reading process cuts the document stream into batches of about ``BATCH_CHARS`` characters
and hands them to worker processes, keeping at most two batches per worker in flight, so
neither the corpus nor its ids ever sit in memory whole. Results come back in input order,
which keeps datasets identical whatever the number of workers.

Workers load the tokenizer once from its file (it is trained after the pool starts).
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from minigpt.data.clean import CleanConfig, clean_text
from minigpt.data.sources import Piece
from minigpt.data.tokenizer import Tokenizer, load_tokenizer

BATCH_CHARS = 1_000_000


@dataclass
class Batch:
    """One batch's cleaned documents: text (training pass) or ids (encoding pass)."""

    pieces: list[Piece]
    texts: list[str] = field(default_factory=list)
    ids: np.ndarray | None = None
    lengths: list[int] = field(default_factory=list)
    chars: list[int] = field(default_factory=list)
    nbytes: list[int] = field(default_factory=list)
    hashes: list[bytes] = field(default_factory=list)
    blank: list[bool] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


_tokenizers: dict[str, Tokenizer] = {}


def _tokenizer(path: str) -> Tokenizer:
    if path not in _tokenizers:
        _tokenizers.clear()
        _tokenizers[path] = load_tokenizer(path)
    return _tokenizers[path]


def process(
    pieces: list[Piece], clean: CleanConfig, tokenizer_path: str | None, dtype: str = "<u4"
) -> Batch:
    """Clean each piece; then either keep the texts or encode them into one id array."""
    batch = Batch(pieces)
    texts = []
    for piece in pieces:
        text, counts = clean_text(piece.text, clean)
        for key, n in counts.items():
            batch.counts[key] = batch.counts.get(key, 0) + n
        texts.append(text)
        data = text.encode("utf-8")
        batch.chars.append(len(text))
        batch.nbytes.append(len(data))
        batch.blank.append(not text or text.isspace())
        complete = piece.first and piece.last
        batch.hashes.append(hashlib.blake2b(data, digest_size=16).digest() if complete else b"")
    if tokenizer_path is None:
        batch.texts = texts
        return batch
    tok = _tokenizer(tokenizer_path)
    arrays = [tok.encode_array(t).astype(dtype, copy=False) for t in texts]
    batch.lengths = [len(a) for a in arrays]
    batch.ids = np.concatenate(arrays) if arrays else np.zeros(0, dtype=dtype)
    batch.pieces = [p._replace(text="") for p in pieces]  # no need to send the text back
    return batch


def batches(pieces: Iterable[Piece], chars: int = BATCH_CHARS) -> Iterator[list[Piece]]:
    """Group pieces into lists of about ``chars`` characters."""
    batch, size = [], 0
    for piece in pieces:
        batch.append(piece)
        size += len(piece.text)
        if size >= chars:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _ignore_interrupts() -> None:
    """Ctrl-C is the main process's to handle: it cancels the work and cleans up."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


class Pool:
    """Runs ``process`` over batches, on ``workers`` processes (or inline for one)."""

    def __init__(self, workers: int) -> None:
        self.workers = max(1, workers)
        self.executor: ProcessPoolExecutor | None = None
        if self.workers > 1:
            methods = multiprocessing.get_all_start_methods()
            context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
            self.executor = ProcessPoolExecutor(
                self.workers, mp_context=context, initializer=_ignore_interrupts
            )

    def map(
        self,
        groups: Iterable[list[Piece]],
        clean: CleanConfig,
        tokenizer_path: str | None,
        dtype: str = "<u4",
    ) -> Iterator[Batch]:
        if self.executor is None:
            for group in groups:
                yield process(group, clean, tokenizer_path, dtype)
            return
        pending: deque[Future] = deque()
        for group in groups:
            pending.append(self.executor.submit(process, group, clean, tokenizer_path, dtype))
            if len(pending) >= 2 * self.workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()

    def close(self, cancel: bool = False) -> None:
        if self.executor is not None:
            self.executor.shutdown(wait=not cancel, cancel_futures=True)

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, kind, value, tb) -> None:
        self.close(cancel=kind is not None)
