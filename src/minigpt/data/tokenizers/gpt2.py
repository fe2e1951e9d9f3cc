"""OpenAI's GPT-2 encoding through tiktoken, read from its cache only (never downloaded)."""

from __future__ import annotations

from collections.abc import Sequence

from minigpt.data.tokenizers.base import Tokenizer
from minigpt.data.tokenizers.bpe import EOT
from minigpt.errors import MiniGPTError


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
