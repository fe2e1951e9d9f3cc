"""A minigpt tokenizer as the vocabulary inside a GGUF file (llama.cpp's "gpt2" BPE kind).

llama.cpp's BPE vocabulary is GPT-2's byte-level BPE: tokens written with GPT-2's
byte-to-character table, merges in rank order, and a pre-tokenizer named by type ("gpt-2":
GPT-2's split pattern, the one minigpt's BPE and GPT-2 tokenizers use). So:

- **BPE** (minigpt's ``bpe`` kind, plain byte-level) and **GPT-2** (tiktoken): the
  tokenizers-library form minigpt already writes for Hugging Face, read into token list,
  types and merges; special tokens are CONTROL tokens.
- **char**: refused. An ASCII char vocabulary would be a byte-level vocabulary with no merges
  (the same ids), but llama.cpp refuses a BPE vocabulary without merges, the gguf writer
  cannot write an empty list, and any merge needs its result as a token, hence a model row,
  that a char model does not have; other characters would need such merges anyway (each is
  several bytes).
- Other tokenizers (a reused tokenizer with another pre-tokenizer or normaliser) are refused.

The model's vocabulary may be larger than the tokenizer's (padding rows): the extra ids
become UNUSED ``[PADn]`` tokens, as llama.cpp's own converter writes them.
"""

from __future__ import annotations

from dataclasses import dataclass

from minigpt.data.hf_tokenizer import tokenizer_json
from minigpt.data.tokenizer import CharTokenizer, Tokenizer
from minigpt.errors import MiniGPTError

NORMAL, CONTROL, UNUSED = 1, 3, 5  # gguf.TokenType values
PRE_TOKENIZER = "gpt-2"  # llama.cpp's LLAMA_VOCAB_PRE_TYPE_GPT2: GPT-2's split pattern


@dataclass
class GGUFVocab:
    tokens: list[str]
    types: list[int]
    merges: list[str]
    eot_id: int | None


def gguf_vocab(tokenizer: Tokenizer, model_vocab_size: int) -> GGUFVocab:
    """The GGUF vocabulary of ``tokenizer``, padded to the model's vocabulary size."""
    if isinstance(tokenizer, CharTokenizer):
        raise MiniGPTError(
            "GGUF holds BPE vocabularies, and llama.cpp refuses one without merges, which a "
            "char tokenizer cannot have without tokens (and model rows) of its own; export it "
            "with --format hf, or prepare the data with --tokenizer bpe for a GGUF model"
        )
    tokens, types, merges = _bpe_vocab(tokenizer)
    if len(tokens) > model_vocab_size:
        raise MiniGPTError(
            f"the tokenizer has {len(tokens)} tokens but the model only {model_vocab_size} rows"
        )
    pad = range(len(tokens), model_vocab_size)
    tokens += [f"[PAD{i}]" for i in pad]
    types += [UNUSED] * len(pad)
    return GGUFVocab(tokens, types, merges, tokenizer.eot_id)


def _bpe_vocab(tok: Tokenizer) -> tuple[list[str], list[int], list[str]]:
    data = tokenizer_json(tok)
    model, pre = data.get("model") or {}, data.get("pre_tokenizer") or {}
    if pre.get("type") == "Sequence" and len(pre.get("pretokenizers", [])) == 1:
        pre = pre["pretokenizers"][0]
    byte_level = (
        model.get("type") == "BPE"
        and pre.get("type") == "ByteLevel"
        and pre.get("use_regex", True)
        and not pre.get("add_prefix_space", False)
        and data.get("normalizer") is None
        and not model.get("byte_fallback", False)
    )
    if not byte_level:
        raise MiniGPTError(
            f"the {tok.kind!r} tokenizer is not plain GPT-2-style byte-level BPE (its "
            "pre-tokenizer or normaliser has no llama.cpp equivalent here); export it with "
            "--format hf"
        )
    by_id = {i: t for t, i in model["vocab"].items()}
    specials = set()
    for added in data.get("added_tokens", []):
        by_id[added["id"]] = added["content"]
        if added.get("special"):
            specials.add(added["id"])
    size = max(by_id) + 1
    if len(by_id) != size:
        raise MiniGPTError(f"the {tok.kind!r} tokenizer's ids have gaps; it cannot be stored")
    tokens = [by_id[i] for i in range(size)]
    types = [CONTROL if i in specials else NORMAL for i in range(size)]
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
    return tokens, types, merges
