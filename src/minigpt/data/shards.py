"""Token shards: flat little-endian id files, written as a stream, read as memory maps.

A split is one file (``train.bin``) or, past ``shard_tokens`` ids, several
(``train-00000.bin``, ``train-00001.bin``, ...), listed in order in ``meta.json``. Files never
exceed a size that every filesystem and tool handles, and the training loader reads them all.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

COPY_TOKENS = 1 << 24


@contextmanager
def naming_errors(path: Path) -> Iterator[None]:
    """A failed write (a full disk) names the file it was writing."""
    try:
        yield
    except OSError as e:
        raise OSError(e.errno, e.strerror, str(path)) from None


def write_array(array: np.ndarray, path: Path) -> None:
    """``array.tofile(path)``, but a failure says why (errno) and where."""
    with naming_errors(path), open(path, "wb") as f:
        f.write(np.ascontiguousarray(array).data)


class ShardWriter:
    """Appends ids to a split's shards, starting a new file every ``shard_tokens`` ids."""

    def __init__(self, folder: Path, split: str, dtype: np.dtype, shard_tokens: int) -> None:
        self.folder, self.split, self.dtype = Path(folder), split, np.dtype(dtype)
        self.shard_tokens = shard_tokens
        self.files: list[str] = []
        self.sizes: list[int] = []
        self._file = None

    @property
    def tokens(self) -> int:
        return sum(self.sizes)

    def write(self, ids: np.ndarray) -> None:
        ids = np.ascontiguousarray(ids, dtype=self.dtype)
        while ids.size:
            if self._file is None or self.sizes[-1] >= self.shard_tokens:
                self._open_next()
            room = self.shard_tokens - self.sizes[-1]
            part, ids = ids[:room], ids[room:]
            with naming_errors(self.folder / self.files[-1]):
                self._file.write(part.data)  # not tofile: its errors carry no errno
            self.sizes[-1] += part.size

    def _close_file(self) -> None:
        if self._file is not None:
            with naming_errors(self.folder / self.files[-1]):
                self._file.close()
            self._file = None

    def _open_next(self) -> None:
        self._close_file()
        name = f"{self.split}-{len(self.files):05d}.bin"
        self.files.append(name)
        self.sizes.append(0)
        self._file = open(self.folder / name, "wb")  # noqa: SIM115 (closed in close/_open_next)

    def close(self) -> list[str]:
        """Close the last shard; a split of one shard is renamed ``<split>.bin``."""
        self._close_file()
        if not self.files:
            self._open_next()
            self._file.close()
            self._file = None
        if len(self.files) == 1 and self.files[0] != f"{self.split}.bin":
            os.replace(self.folder / self.files[0], self.folder / f"{self.split}.bin")
            self.files = [f"{self.split}.bin"]
        return self.files

    def read(self, start: int, end: int) -> np.ndarray:
        """Ids ``start:end`` of what was written (across shards)."""
        if self._file is not None:
            with naming_errors(self.folder / self.files[-1]):
                self._file.flush()
        out, offset = [], 0
        for name, size in zip(self.files, self.sizes, strict=True):
            lo, hi = max(start - offset, 0), min(end - offset, size)
            if lo < hi:
                out.append(np.array(np.memmap(self.folder / name, self.dtype, "r")[lo:hi]))
            offset += size
        return np.concatenate(out) if out else np.zeros(0, self.dtype)

    def move_tail(self, keep: int, other: ShardWriter) -> None:
        """Move every id after the first ``keep`` to ``other`` (for the classic tail split)."""
        self._close_file()
        offset, files, sizes = 0, [], []
        for name, size in zip(self.files, self.sizes, strict=True):
            path = self.folder / name
            stay = min(max(keep - offset, 0), size)
            if stay < size:
                data = np.memmap(path, self.dtype, "r")
                for lo in range(stay, size, COPY_TOKENS):
                    other.write(np.array(data[lo : min(lo + COPY_TOKENS, size)]))
                del data
                os.truncate(path, stay * self.dtype.itemsize)
            if stay:
                files.append(name)
                sizes.append(stay)
            else:
                path.unlink()
            offset += size
        self.files, self.sizes = files, sizes
