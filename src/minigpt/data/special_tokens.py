"""Adding reserved special tokens to an existing tokenizer (chat turns need them).

A special token is a whole token with an exact string (``<|user|>``) that ordinary text never
produces: char tokenizers look text up one code point at a time, and BPE encoding never matches
added tokens in text, so only code that places the token on purpose (a chat template, through
``encode_with_specials``) can put it in a sequence. New tokens take the next free ids, so every
existing id keeps its meaning and a model trained with the old tokenizer only needs new rows in
its embedding (``minigpt.model.resize``).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

from minigpt.data.tokenizer import BPETokenizer, CharTokenizer, Tokenizer
from minigpt.errors import MiniGPTError


def add_special_tokens(tok: Tokenizer, names: Sequence[str]) -> tuple[Tokenizer, list[str]]:
    """``tok`` with the special tokens it lacks appended, and the names that were added.

    The chat template, if ``tok`` has one, is kept. A GPT-2 (tiktoken) tokenizer is fixed and
    cannot be extended: one line says what to use instead.
    """
    missing = [n for n in dict.fromkeys(names) if n not in tok.special_tokens]
    if not missing:
        return tok, []
    if isinstance(tok, CharTokenizer):
        new: Tokenizer = CharTokenizer(
            tok.chars, unknown=tok.unknown, specials=[*tok.specials, *missing]
        )
    elif isinstance(tok, BPETokenizer):
        data = copy.deepcopy(tok.data)
        added = data.setdefault("added_tokens", [])
        for i, name in enumerate(missing):
            added.append(
                {
                    "id": tok.vocab_size + i,
                    "content": name,
                    "single_word": False,
                    "lstrip": False,
                    "rstrip": False,
                    "normalized": False,
                    "special": True,
                }
            )
        new = BPETokenizer(data)
    else:
        raise MiniGPTError(
            f"the {tok.kind} tokenizer cannot take new special tokens ({', '.join(missing)}); "
            "use --tokenizer bpe, a BPE tokenizer.json, or hf:DIR"
        )
    new.chat_template = tok.chat_template
    return new, missing
