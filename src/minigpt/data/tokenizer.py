"""Tokenizers: text <-> token ids, behind one interface.

Every tokenizer is saved as a single ``tokenizer.json`` next to the dataset and copied into each
run folder, so a checkpoint can always decode its own output. ``load_tokenizer`` picks the class
from the file: minigpt's own files carry a ``"kind"`` key; a Hugging Face ``tokenizers`` file
(which has a ``"model"`` key) is a byte-level BPE tokenizer.

Each kind lives in its own module under ``tokenizers/``; a new kind registers itself in
``TOKENIZERS`` by its ``kind`` name.
"""

from __future__ import annotations

import json
from pathlib import Path

from minigpt.data.tokenizers.base import (
    CHAT_TEMPLATE_FILE,
    TOKENIZER_FILE,
    Tokenizer,
    describe_chars,
)
from minigpt.data.tokenizers.bpe import EOT, BPETokenizer, check_vocab_size
from minigpt.data.tokenizers.char import CharTokenizer
from minigpt.data.tokenizers.gpt2 import GPT2Tokenizer
from minigpt.errors import MiniGPTError

__all__ = [
    "EOT",
    "TOKENIZERS",
    "TOKENIZER_FILE",
    "BPETokenizer",
    "CharTokenizer",
    "GPT2Tokenizer",
    "Tokenizer",
    "check_vocab_size",
    "describe_chars",
    "describe_tokenizer",
    "inspect_text",
    "load_tokenizer",
]


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
    tok = TOKENIZERS[kind].from_json(data)
    template = path.with_name(CHAT_TEMPLATE_FILE)
    if path.name == TOKENIZER_FILE and template.is_file():
        tok.chat_template = template.read_text(encoding="utf-8")
    return tok
