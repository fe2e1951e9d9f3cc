"""The character tokenizer: one token per Unicode code point of the training text."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from minigpt.data.tokenizers.base import Tokenizer, describe_chars
from minigpt.errors import MiniGPTError


class CharTokenizer(Tokenizer):
    """One token per Unicode code point seen in the training text.

    ``unknown="error"`` (the default) refuses text with characters outside the vocabulary;
    ``unknown="unk"`` adds an ``<unk>`` token (after the characters) and maps them to it.
    ``specials`` (e.g. chat turn markers) take the ids after those; text never produces them.
    """

    kind = "char"
    UNK = "<unk>"

    def __init__(
        self, chars: Sequence[str], unknown: str = "error", specials: Sequence[str] = ()
    ) -> None:
        if unknown not in ("error", "unk"):
            raise MiniGPTError(
                f"unknown-character policy must be 'error' or 'unk', not {unknown!r}"
            )
        self.chars = list(chars)
        self.unknown = unknown
        self.stoi = {c: i for i, c in enumerate(self.chars)}
        self.unk_id = len(self.chars) if unknown == "unk" else None
        self.specials = list(specials)
        first = len(self.chars) + (self.unk_id is not None)
        self._special_ids = {name: first + i for i, name in enumerate(self.specials)}
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
        return len(self.chars) + (1 if self.unk_id is not None else 0) + len(self.specials)

    @property
    def special_tokens(self) -> dict[str, int]:
        unk = {self.UNK: self.unk_id} if self.unk_id is not None else {}
        return {**unk, **self._special_ids}

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
        """Ids outside the vocabulary (the padding rows of a model with a larger vocab_size,
        which an untrained model samples; a negative id) decode to nothing, as the BPE
        tokenizer's do; a negative one must not index from the end of ``chars``."""
        n, first = len(self.chars), len(self.chars) + (self.unk_id is not None)
        names, end = self.specials, first + len(self.specials)
        return "".join(
            self.chars[i] if i < n else self.UNK if i < first else names[i - first]
            for i in ids
            if 0 <= i < end
        )

    def to_json(self) -> dict:
        data = {"kind": self.kind, "version": 1, "chars": self.chars, "unknown": self.unknown}
        if self.specials:  # only then, so older files keep their fingerprint
            data["specials"] = self.specials
        return data

    @classmethod
    def from_json(cls, data: dict) -> CharTokenizer:
        return cls(data["chars"], data.get("unknown", "error"), data.get("specials", ()))
