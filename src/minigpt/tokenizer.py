"""Tokenizers: text <-> token ids, behind one interface.

Every tokenizer is saved as a single ``tokenizer.json`` next to the dataset and copied into each
run folder, so a checkpoint can always decode its own output. ``load_tokenizer`` picks the class
from the file: minigpt's own files carry a ``"kind"`` key; a Hugging Face ``tokenizers`` file
(which has a ``"model"`` key) is a byte-level BPE tokenizer.

New kinds register themselves in ``TOKENIZERS`` by their ``kind`` name.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np

from minigpt.errors import MiniGPTError

TOKENIZER_FILE = "tokenizer.json"


class Tokenizer(ABC):
    """The interface the rest of minigpt relies on."""

    kind: ClassVar[str]

    @property
    @abstractmethod
    def vocab_size(self) -> int: ...

    @property
    def special_tokens(self) -> dict[str, int]:
        """Names of special tokens (e.g. end of document) and their ids."""
        return {}

    @property
    def eot_id(self) -> int | None:
        """The end-of-document token placed between documents, if this tokenizer has one."""
        return self.special_tokens.get("<|endoftext|>")

    @abstractmethod
    def encode(self, text: str) -> list[int]: ...

    @abstractmethod
    def decode(self, ids: Sequence[int]) -> str: ...

    def encode_array(self, text: str) -> np.ndarray:
        """Encode to a numpy array of ids (subclasses override for speed)."""
        return np.asarray(self.encode(text), dtype=np.int64)

    @abstractmethod
    def to_json(self) -> dict: ...

    @classmethod
    @abstractmethod
    def from_json(cls, data: dict) -> Tokenizer: ...

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / TOKENIZER_FILE
        path.write_text(json.dumps(self.to_json(), ensure_ascii=False), encoding="utf-8")
        return path

    def fingerprint(self) -> str:
        """A short hash that changes whenever the id <-> text mapping changes."""
        import hashlib

        blob = json.dumps(self.to_json(), sort_keys=True, ensure_ascii=False).encode("utf-8")
        return hashlib.sha256(blob).hexdigest()[:16]


def describe_chars(chars: Iterable[str], limit: int = 10) -> str:
    """'é' (U+00E9), '\\t' (U+0009): readable even for invisible characters."""
    chars = sorted(set(chars))
    shown = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in chars[:limit])
    more = f" and {len(chars) - limit} more" if len(chars) > limit else ""
    return shown + more


class CharTokenizer(Tokenizer):
    """One token per Unicode code point seen in the training text.

    ``unknown="error"`` (the default) refuses text with characters outside the vocabulary;
    ``unknown="unk"`` adds an ``<unk>`` token (the last id) and maps them to it.
    """

    kind = "char"
    UNK = "<unk>"

    def __init__(self, chars: Sequence[str], unknown: str = "error") -> None:
        if unknown not in ("error", "unk"):
            raise MiniGPTError(
                f"unknown-character policy must be 'error' or 'unk', not {unknown!r}"
            )
        self.chars = list(chars)
        self.unknown = unknown
        self.stoi = {c: i for i, c in enumerate(self.chars)}
        self.unk_id = len(self.chars) if unknown == "unk" else None
        # Sorted code points and their ids, for vectorised encoding with searchsorted.
        order = np.argsort([ord(c) for c in self.chars])
        self._codepoints = np.array([ord(self.chars[i]) for i in order], dtype=np.uint32)
        self._ids = order.astype(np.int64)

    @classmethod
    def train(cls, texts: Iterable[str], unknown: str = "error") -> CharTokenizer:
        seen: set[str] = set()
        for text in texts:
            seen.update(text)
        if not seen:
            raise MiniGPTError("cannot build a char vocabulary from empty text")
        return cls(sorted(seen), unknown=unknown)

    @property
    def vocab_size(self) -> int:
        return len(self.chars) + (1 if self.unk_id is not None else 0)

    @property
    def special_tokens(self) -> dict[str, int]:
        return {self.UNK: self.unk_id} if self.unk_id is not None else {}

    def encode_array(self, text: str) -> np.ndarray:
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        if codes.size == 0:
            return np.zeros(0, dtype=np.int64)
        pos = np.searchsorted(self._codepoints, codes).clip(0, len(self._codepoints) - 1)
        known = self._codepoints[pos] == codes
        ids = self._ids[pos]
        if not known.all():
            if self.unk_id is None:
                missing = {chr(c) for c in codes[~known]}
                raise MiniGPTError(
                    f"text has characters the char vocabulary lacks: {describe_chars(missing)}; "
                    "remove them, or prepare the dataset with --unknown unk"
                )
            ids = np.where(known, ids, self.unk_id)
        return ids

    def encode(self, text: str) -> list[int]:
        return self.encode_array(text).tolist()

    def decode(self, ids: Sequence[int]) -> str:
        n = len(self.chars)
        return "".join(self.chars[i] if i < n else self.UNK for i in ids)

    def to_json(self) -> dict:
        return {"kind": self.kind, "version": 1, "chars": self.chars, "unknown": self.unknown}

    @classmethod
    def from_json(cls, data: dict) -> CharTokenizer:
        return cls(data["chars"], unknown=data.get("unknown", "error"))


TOKENIZERS: dict[str, type[Tokenizer]] = {"char": CharTokenizer}


def load_tokenizer(path: str | Path) -> Tokenizer:
    """Load ``tokenizer.json`` from a dataset or run folder (or the file itself)."""
    path = Path(path)
    if path.is_dir():
        path = path / TOKENIZER_FILE
    if not path.is_file():
        raise MiniGPTError(f"no tokenizer at {path}; prepare the dataset with `minigpt prepare`")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise MiniGPTError(f"tokenizer file {path} is corrupted ({e}); prepare it again") from None
    kind = data.get("kind") or ("bpe" if "model" in data else None)
    if kind not in TOKENIZERS:
        raise MiniGPTError(
            f"tokenizer file {path} has unsupported kind {kind!r}; "
            f"supported: {', '.join(TOKENIZERS)}"
        )
    return TOKENIZERS[kind].from_json(data)
