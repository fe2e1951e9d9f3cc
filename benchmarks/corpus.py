"""Synthetic corpora for the data-pipeline benchmarks, built offline from text on this machine.

Documents are random runs of lines drawn from Tiny Shakespeare (when present), Python's help
topics and the standard library's sources: English prose and verse, technical text and code,
with the long tail of rare words (identifiers) that makes BPE training and encoding realistic.
"""

from __future__ import annotations

import random
import sysconfig
from collections.abc import Iterator
from pathlib import Path

SHAKESPEARE = Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare.txt"


def line_pool(max_files: int = 1500) -> list[str]:
    from pydoc_data.topics import topics

    lines = []
    if SHAKESPEARE.is_file():
        lines += SHAKESPEARE.read_text(encoding="utf-8").splitlines()
    for name in sorted(topics):
        lines += topics[name].splitlines()
    stdlib = sorted(Path(sysconfig.get_paths()["stdlib"]).rglob("*.py"))[:max_files]
    for path in stdlib:
        try:
            lines += path.read_text(encoding="utf-8").splitlines()
        except (UnicodeDecodeError, OSError):
            continue
    return [line for line in lines if line.strip()]


def documents(total_bytes: int, seed: int = 0, pool: list[str] | None = None) -> Iterator[str]:
    """Documents of 20 to 200 lines until about ``total_bytes`` of UTF-8 text."""
    pool = pool or line_pool()
    rng = random.Random(seed)
    written = 0
    while written < total_bytes:
        start = rng.randrange(len(pool))
        doc = "\n".join(pool[start : start + rng.randint(20, 200)])
        written += len(doc.encode("utf-8")) + 1
        yield doc


def write_corpus(
    folder: Path, total_bytes: int, seed: int = 0, file_bytes: int = 50_000_000
) -> int:
    """Text files of about ``file_bytes``, one document per blank-line separated paragraph."""
    folder.mkdir(parents=True, exist_ok=True)
    pool = line_pool()
    n, size, out = 0, 0, None
    for doc in documents(total_bytes, seed, pool):
        if out is None or size >= file_bytes:
            if out:
                out.close()
            out = open(folder / f"part-{n:04d}.txt", "w", encoding="utf-8")  # noqa: SIM115
            n, size = n + 1, 0
        out.write(doc.replace("\n\n", "\n") + "\n\n")
        size += len(doc) + 2
    if out:
        out.close()
    return sum(p.stat().st_size for p in folder.iterdir())
