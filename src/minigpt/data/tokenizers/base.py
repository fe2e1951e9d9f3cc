"""The interface every tokenizer kind implements, and the file it is saved to."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np

TOKENIZER_FILE = "tokenizer.json"
CHAT_TEMPLATE_FILE = "chat_template.jinja"  # next to tokenizer.json, as transformers saves it


class Tokenizer(ABC):
    """The interface the rest of minigpt relies on."""

    kind: ClassVar[str]
    # The Jinja chat template conversations are rendered with (see data/chat_template.py):
    # saved beside tokenizer.json, so it travels with the tokenizer into runs and exports.
    chat_template: str | None = None

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

    def pieces(self, text: str) -> list[str]:
        """The text each token of ``text`` stands for (to see how a tokenizer splits text)."""
        return [self.decode([i]) for i in self.encode(text)]

    @abstractmethod
    def to_json(self) -> dict: ...

    @classmethod
    @abstractmethod
    def from_json(cls, data: dict) -> Tokenizer: ...

    def save(self, folder: str | Path) -> Path:
        """Write ``folder/tokenizer.json`` (or the file itself, for a path ending in .json)."""
        path = Path(folder)
        if path.suffix != ".json":
            path = path / TOKENIZER_FILE
        path.write_text(json.dumps(self.to_json(), ensure_ascii=False), encoding="utf-8")
        template = path.with_name(CHAT_TEMPLATE_FILE)
        if self.chat_template is not None and path.name == TOKENIZER_FILE:
            template.write_text(self.chat_template, encoding="utf-8")
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
