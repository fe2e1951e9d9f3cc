"""What ``prepare`` and ``train_tokenizer`` resolve from their arguments before reading any
text: the input files, the options, the worker count; and the progress bar over input bytes."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from minigpt.data.clean import CleanConfig
from minigpt.data.defaults import SHARD_TOKENS
from minigpt.data.encode import default_workers
from minigpt.data.sources import SourceOptions, find_inputs
from minigpt.errors import MiniGPTError

INLINE_BYTES = 4_000_000  # below this, one process is faster than starting workers


class Progress:
    """A tqdm bar over input bytes (MB/s and ETA), or nothing when quiet."""

    def __init__(self, total: int, desc: str, enabled: bool) -> None:
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(
                total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1000,
                file=sys.stderr, dynamic_ncols=True, leave=False,
            )  # fmt: skip

    def __call__(self, n: int) -> None:
        if self.bar is not None and n:
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@dataclass
class Plan:
    """Everything prepare needs to know, resolved from its arguments."""

    files: list[Path]
    sources: SourceOptions
    clean: CleanConfig
    seed: int
    workers: int
    total_bytes: int
    progress: bool
    split: str = "documents"
    auto_split: bool = False  # documents, or tail when val would get no document
    val_fraction: float = 0.1
    shard_tokens: int = SHARD_TOKENS


def make_plan(
    inputs: Sequence[str | Path],
    sources: SourceOptions,
    clean: CleanConfig | None,
    seed: int,
    workers: int | None,
    progress: bool | None,
    quiet: bool,
) -> Plan:
    if sources.errors not in ("strict", "replace"):
        raise MiniGPTError(f"--errors must be 'strict' or 'replace', not {sources.errors!r}")
    if workers is not None and workers < 1:
        raise MiniGPTError(f"workers must be at least 1, got {workers}")
    files = find_inputs(inputs, sources.include, sources.exclude, sources.notes.not_followed)
    total = sum(p.stat().st_size for p in files)
    return Plan(
        files=files,
        sources=sources,
        clean=clean or CleanConfig(),
        seed=seed,
        workers=workers or (1 if total < INLINE_BYTES else default_workers()),
        total_bytes=total,
        progress=(not quiet and sys.stderr.isatty()) if progress is None else progress,
    )


def empty_corpus(plan: Plan) -> MiniGPTError:
    if len(plan.files) == 1:
        return MiniGPTError(f"{plan.files[0]} is empty; remove it from the inputs or add text")
    return MiniGPTError("the inputs hold no text after cleaning; check them, or --min-chars")
