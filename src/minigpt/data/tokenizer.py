"""Tokenizers: text <-> token ids, behind one interface.

Every tokenizer is saved as a single ``tokenizer.json`` next to the dataset and copied into each
run folder, so a checkpoint can always decode its own output. ``load_tokenizer`` picks the class
from the file: minigpt's own files carry a ``"kind"`` key; a Hugging Face ``tokenizers`` file
(which has a ``"model"`` key) is a byte-level BPE tokenizer.

New kinds register themselves in ``TOKENIZERS`` by their ``kind`` name.
"""

from __future__ import annotations

import functools
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
        return path

    def fingerprint(self) -> str:
        """A short hash that changes whenever the id <-> text mapping changes."""
        import hashlib

        blob = json.dumps(self.to_json(), sort_keys=True, ensure_ascii=False).encode("utf-8")
        return hashlib.sha256(blob).hexdigest()[:16]


def inspect_text(tok: Tokenizer, text: str) -> str:
    """How ``tok`` splits ``text``: the pieces between bars, their ids, and the counts."""
    ids = tok.encode(text)
    pieces = tok.pieces(text)
    shown = "|".join(p.replace("\n", "\\n").replace("\t", "\\t") for p in pieces)
    nbytes = len(text.encode("utf-8"))
    return (
        f"{len(text)} characters, {nbytes} bytes -> {len(ids)} tokens "
        f"({nbytes / max(1, len(ids)):.2f} bytes/token)\n"
        f"pieces: |{shown}|\n"
        f"ids: {' '.join(map(str, ids))}"
    )


def describe_tokenizer(tok: Tokenizer) -> str:
    """One line: kind, vocabulary size, special tokens."""
    special = ", ".join(f"{k}={v}" for k, v in tok.special_tokens.items()) or "none"
    extra = ""
    if isinstance(tok, BPETokenizer):
        extra = f", encoder {'tiktoken' if tok.fast else 'tokenizers'}"
    return f"{tok.kind} tokenizer, vocab {tok.vocab_size:,}, special tokens: {special}{extra}"


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


EOT = "<|endoftext|>"
# The GPT-2 pre-tokenizer pattern, which Hugging Face's byte-level pre-tokenizer also uses.
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
BYTE_ALPHABET = 256


@functools.cache
def _byte_decoder() -> dict[str, int]:
    """The byte-level alphabet: each of the 256 bytes is shown as one printable character."""
    from tokenizers.pre_tokenizers import ByteLevel

    # ByteLevel.alphabet() is unordered; GPT-2's bytes_to_unicode order is rebuilt here.
    printable = [*range(33, 127), *range(161, 173), *range(174, 256)]
    chars = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in chars:
            chars[b] = chr(256 + extra)
            extra += 1
    assert set(chars.values()) == set(ByteLevel.alphabet())
    return {c: b for b, c in chars.items()}


def check_vocab_size(vocab_size: int) -> None:
    """Byte-level BPE needs a token for each byte, plus the end-of-document token."""
    smallest = BYTE_ALPHABET + 1
    if vocab_size < smallest:
        raise MiniGPTError(
            f"vocab size {vocab_size} is too small: byte-level BPE needs {BYTE_ALPHABET} "
            f"byte tokens plus the {EOT} token; use at least {smallest} (e.g. 32000)"
        )


class BPETokenizer(Tokenizer):
    """Byte-level BPE (as in GPT-2), stored as a Hugging Face ``tokenizers`` file.

    Any text round-trips exactly: every byte has a token, so nothing is ever unknown. Training
    uses Hugging Face ``tokenizers``; encoding uses ``tiktoken`` built from the same merges and
    the same GPT-2 split pattern, which gives the same ids about three times faster. Files that
    are not plain byte-level BPE (e.g. a reused tokenizer from elsewhere) are encoded by
    ``tokenizers`` itself.

    ``encode`` treats every string as text, so a document that spells ``<|endoftext|>`` does not
    produce the special token; only ``prepare`` places it, between documents.
    """

    kind = "bpe"

    def __init__(self, data: dict) -> None:
        from tokenizers import Tokenizer as HFTokenizer

        try:
            self.hf = HFTokenizer.from_str(json.dumps(data))
        except Exception as e:  # tokenizers raises plain Exceptions for malformed files
            raise MiniGPTError(
                f"not a valid tokenizers file ({e}); train the tokenizer again"
            ) from None
        self.data = data
        self._fast = _tiktoken_encoding(data) if _is_plain_byte_level(data) else None

    @classmethod
    def train(
        cls,
        texts: Iterable[str],
        vocab_size: int = 32000,
        min_frequency: int = 2,
        show_progress: bool = False,
    ) -> BPETokenizer:
        """Learn merges from ``texts`` until the vocabulary holds ``vocab_size`` tokens."""
        from tokenizers import Tokenizer as HFTokenizer
        from tokenizers import decoders, models, pre_tokenizers, trainers

        check_vocab_size(vocab_size)
        hf = HFTokenizer(models.BPE())
        hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        hf.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            special_tokens=[EOT],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=show_progress,
        )
        hf.train_from_iterator(texts, trainer=trainer)
        learned = hf.get_vocab_size(with_added_tokens=True)
        if learned < vocab_size:
            raise MiniGPTError(
                f"vocab size {vocab_size} is more than this text can teach (it stopped at "
                f"{learned} tokens: no pair of tokens is left that occurs {min_frequency}+ "
                f"times); use --vocab-size {learned} or less, or more text"
            )
        return cls(json.loads(hf.to_str()))

    @property
    def vocab_size(self) -> int:
        return self.hf.get_vocab_size(with_added_tokens=True)

    @property
    def special_tokens(self) -> dict[str, int]:
        added = self.hf.get_added_tokens_decoder()
        return {t.content: i for i, t in sorted(added.items()) if t.special}

    @property
    def fast(self) -> bool:
        """Whether encoding goes through tiktoken (plain byte-level BPE files)."""
        return self._fast is not None

    def encode(self, text: str) -> list[int]:
        if self._fast is not None:
            return self._fast.encode_ordinary(text)
        return self.hf.encode(text, add_special_tokens=False).ids

    def encode_array(self, text: str) -> np.ndarray:
        if self._fast is not None:  # straight into numpy, no list of Python ints
            return self._fast.encode_to_numpy(text, disallowed_special=())
        return np.asarray(self.encode(text), dtype=np.int64)

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        """Encode many texts at once (tiktoken and tokenizers both use several threads)."""
        if self._fast is not None:
            return self._fast.encode_ordinary_batch(texts)
        return [e.ids for e in self.hf.encode_batch(texts, add_special_tokens=False)]

    def decode(self, ids: Sequence[int]) -> str:
        return self.hf.decode(list(ids), skip_special_tokens=False)

    def pieces(self, text: str) -> list[str]:
        """Each token of ``text`` as the text it stands for (partial characters shown as bytes)."""
        out = []
        for i in self.encode(text):
            raw = self.token_bytes(i)
            try:
                out.append(raw.decode("utf-8"))
            except UnicodeDecodeError:
                out.append("".join(f"<0x{b:02X}>" for b in raw))
        return out

    def token_bytes(self, token_id: int) -> bytes:
        token = self.hf.id_to_token(token_id)
        if token in self.special_tokens:
            return token.encode("utf-8")
        decoder = _byte_decoder()
        if all(c in decoder for c in token):
            return bytes(decoder[c] for c in token)
        return self.decode([token_id]).encode("utf-8")

    def to_json(self) -> dict:
        return self.data

    @classmethod
    def from_json(cls, data: dict) -> BPETokenizer:
        return cls(data)


def _is_plain_byte_level(data: dict) -> bool:
    """True for GPT-2 style files: byte-level split and decoder, BPE merges, nothing else."""
    pre, model = data.get("pre_tokenizer") or {}, data.get("model") or {}
    if pre.get("type") == "Sequence" and len(pre.get("pretokenizers", [])) == 1:
        pre = pre["pretokenizers"][0]
    return (
        data.get("normalizer") is None
        and pre.get("type") == "ByteLevel"
        and pre.get("use_regex", True)
        and not pre.get("add_prefix_space", False)
        and (data.get("decoder") or {}).get("type") == "ByteLevel"
        and model.get("type") == "BPE"
        and model.get("dropout") is None
        and not model.get("continuing_subword_prefix")
        and not model.get("end_of_word_suffix")
        and not model.get("byte_fallback", False)
        and (data.get("post_processor") or {}).get("type") in (None, "ByteLevel")
    )


def _tiktoken_encoding(data: dict):
    """A tiktoken Encoding with the same ranks (ids) as a byte-level BPE tokenizers file."""
    try:
        import tiktoken
    except ImportError:
        return None
    decoder = _byte_decoder()
    ranks = {}
    for token, i in data["model"]["vocab"].items():
        if not all(c in decoder for c in token):
            return None
        ranks[bytes(decoder[c] for c in token)] = i
    if any(bytes([b]) not in ranks for b in range(256)):
        return None
    special = {t["content"]: t["id"] for t in data.get("added_tokens", []) if t.get("special")}
    return tiktoken.Encoding(
        name="minigpt-bpe", pat_str=GPT2_PATTERN, mergeable_ranks=ranks, special_tokens=special
    )


class GPT2Tokenizer(Tokenizer):
    """OpenAI's GPT-2 encoding (50,257 tokens) through tiktoken, for English corpora.

    tiktoken downloads its files on first use; minigpt never goes online at run time, so this
    works only where tiktoken's cache already holds them (``TIKTOKEN_CACHE_DIR``).
    """

    kind = "gpt2"

    def __init__(self) -> None:
        self.enc = _load_gpt2_offline()

    @property
    def vocab_size(self) -> int:
        return self.enc.n_vocab

    @property
    def special_tokens(self) -> dict[str, int]:
        return {EOT: self.enc.eot_token}

    def encode(self, text: str) -> list[int]:
        return self.enc.encode_ordinary(text)

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return self.enc.encode_ordinary_batch(texts)

    def decode(self, ids: Sequence[int]) -> str:
        return self.enc.decode(list(ids))

    def to_json(self) -> dict:
        return {"kind": self.kind, "version": 1}

    @classmethod
    def from_json(cls, data: dict) -> GPT2Tokenizer:
        return cls()


GPT2_FILES = (
    "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/vocab.bpe",
    "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/encoder.json",
)


def _load_gpt2_offline():
    """tiktoken's gpt2 encoding if its files are in tiktoken's cache; never downloads."""
    import hashlib
    import os
    import tempfile

    try:
        import tiktoken
    except ImportError:
        raise MiniGPTError("the gpt2 tokenizer needs tiktoken; pip install tiktoken") from None
    cache = os.environ.get("TIKTOKEN_CACHE_DIR") or os.environ.get("DATA_GYM_CACHE_DIR")
    cache = cache or os.path.join(tempfile.gettempdir(), "data-gym-cache")
    keys = [hashlib.sha1(url.encode()).hexdigest() for url in GPT2_FILES]
    if not all(os.path.isfile(os.path.join(cache, k)) for k in keys):
        raise MiniGPTError(
            "the gpt2 tokenizer is not available offline: tiktoken has not cached its files in "
            f"{cache} and minigpt does not download; run tiktoken.get_encoding('gpt2') once "
            "online (or set TIKTOKEN_CACHE_DIR), pass a GPT-2 tokenizer.json with --tokenizer, "
            "or use --tokenizer bpe"
        )
    return tiktoken.get_encoding("gpt2")


TOKENIZERS: dict[str, type[Tokenizer]] = {
    "char": CharTokenizer,
    "bpe": BPETokenizer,
    "gpt2": GPT2Tokenizer,
}


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
