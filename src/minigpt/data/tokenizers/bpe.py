"""Byte-level BPE, trained with Hugging Face ``tokenizers`` and encoded with ``tiktoken``."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence

import numpy as np

from minigpt.data.tokenizers.base import Tokenizer
from minigpt.errors import MiniGPTError

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
        self.hf.encode_special_tokens = True  # text that spells a special token stays text
        self.data = data
        self._fast = _tiktoken_encoding(data) if _is_plain_byte_level(data) else None

    @classmethod
    def train(
        cls,
        texts: Iterable[str],
        vocab_size: int = 32000,
        min_frequency: int = 2,
        show_progress: bool = False,
        special_tokens: Sequence[str] = (),
    ) -> BPETokenizer:
        """Learn merges from ``texts`` until the vocabulary holds ``vocab_size`` tokens.

        ``special_tokens`` (e.g. chat turn markers) are reserved after ``<|endoftext|>``.
        """
        from tokenizers import Tokenizer as HFTokenizer
        from tokenizers import decoders, models, pre_tokenizers, trainers

        check_vocab_size(vocab_size)
        hf = HFTokenizer(models.BPE())
        hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        hf.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            special_tokens=[EOT, *special_tokens],
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
        """Ids outside the vocabulary decode to nothing, as tokenizers itself treats those past
        it; a negative or huge one would overflow its u32 ids (OverflowError)."""
        size = self.vocab_size
        return self.hf.decode([i for i in ids if 0 <= i < size], skip_special_tokens=False)

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
