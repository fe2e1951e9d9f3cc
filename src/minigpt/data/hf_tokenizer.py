"""Hugging Face tokenizer files as minigpt tokenizers, and minigpt tokenizers as them.

``prepare --tokenizer hf:DIR`` reads a folder's tokenizer here, and the Hugging Face export
writes ``tokenizer.json`` and ``tokenizer_config.json`` from here. Kept in the data stage, under
every model-level module, because a tokenizer is data: preparing a dataset must not need the
model code.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from minigpt.data.tokenizer import TOKENIZER_FILE, CharTokenizer, Tokenizer, load_tokenizer
from minigpt.errors import MiniGPTError

HF_PREFIX = "hf:"
HF_CONFIG_FILE = "config.json"
HF_TOKENIZER_CONFIG = "tokenizer_config.json"


def hf_folder(ref: str | Path) -> Path:
    """The folder of ``hf:DIR`` (or of DIR), checked to exist: minigpt never downloads."""
    text = str(ref)
    folder = Path(text[len(HF_PREFIX) :] if text.startswith(HF_PREFIX) else text)
    if not folder.is_dir():
        raise MiniGPTError(
            f"{text}: no such folder; minigpt never downloads models: pass a local folder "
            f"(e.g. one saved with save_pretrained, or `hf download gpt2 --local-dir gpt2`)"
        )
    if not (folder / HF_CONFIG_FILE).is_file():
        raise MiniGPTError(
            f"{folder} holds no {HF_CONFIG_FILE}; pass a Hugging Face model folder "
            "(config.json, model.safetensors, tokenizer.json)"
        )
    return folder


# -- tokenizers ------------------------------------------------------------------------------


def _tokenizers_lib() -> Any:
    try:
        import tokenizers
    except ImportError:
        raise MiniGPTError(
            "the Hugging Face format needs the tokenizers library; pip install 'minigpt[hf]'"
        ) from None
    return tokenizers


def char_tokenizer_json(tok: CharTokenizer) -> dict[str, Any]:
    """A ``tokenizers`` file that encodes and decodes exactly as ``tok`` does.

    A BPE model with no merges splits text into code points and looks each one up; no
    normaliser or pre-tokenizer touches the text; the Fuse decoder joins tokens with nothing
    in between. Unknown characters become ``<unk>`` where the vocabulary has it (and are
    dropped where it does not, as the tokenizers library does).
    """
    lib = _tokenizers_lib()
    vocab = {c: i for i, c in enumerate(tok.chars)}
    unk = tok.UNK if tok.unk_id is not None else None
    if unk is not None:
        vocab[unk] = tok.unk_id
    hf = lib.Tokenizer(lib.models.BPE(vocab=vocab, merges=[], unk_token=unk))
    if unk is not None:
        hf.add_special_tokens([unk])
    hf.add_special_tokens(tok.specials)  # chat turn tokens: the ids after the characters
    hf.decoder = lib.decoders.Fuse()
    return json.loads(hf.to_str())


def char_tokenizer_from_json(data: dict[str, Any]) -> CharTokenizer | None:
    """The CharTokenizer a ``char_tokenizer_json`` file came from; None for other files."""
    model = data.get("model") or {}
    if (
        model.get("type") != "BPE"
        or model.get("merges")
        or data.get("normalizer")
        or data.get("pre_tokenizer")
        or (data.get("decoder") or {}).get("type") != "Fuse"
    ):
        return None
    by_id = {i: s for s, i in model.get("vocab", {}).items()}
    unk = model.get("unk_token")
    chars = [by_id.get(i) for i in range(len(by_id) - (1 if unk else 0))]
    if any(c is None or len(c) != 1 for c in chars):
        return None
    if unk is not None and (unk != CharTokenizer.UNK or by_id.get(len(chars)) != unk):
        return None
    first = len(by_id)
    added = {t["id"]: t["content"] for t in data.get("added_tokens", []) if t["id"] >= first}
    if sorted(added) != list(range(first, first + len(added))):
        return None
    specials = [added[i] for i in sorted(added)]
    return CharTokenizer(chars, unknown="unk" if unk else "error", specials=specials)


# GPT-2's pre-tokenization pattern, as tiktoken writes it (the original, and the possessive
# form of newer tiktoken versions); the tokenizers library's ByteLevel pre-tokenizer splits
# text the same way.
GPT2_PATTERNS = (
    r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""",
    r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s""",
)


def byte_to_unicode() -> dict[int, str]:
    """GPT-2's printable stand-in character for each byte, as byte-level BPE files use."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    keep += range(ord("®"), ord("ÿ") + 1)
    extra = (b for b in range(256) if b not in keep)
    shifted = {b: chr(256 + i) for i, b in enumerate(extra)}
    return {b: chr(b) if b in keep else shifted[b] for b in range(256)}


def _last_merge(ranks: dict[bytes, int], token: bytes) -> tuple[bytes, bytes]:
    """The two pieces byte-level BPE joins last to build ``token`` (using lower ranks only)."""
    limit, parts = ranks[token], [bytes([b]) for b in token]
    while len(parts) > 2:
        pairs = [
            (ranks.get(parts[i] + parts[i + 1], limit), i)
            for i in range(len(parts) - 1)
            if ranks.get(parts[i] + parts[i + 1], limit) < limit
        ]
        if not pairs:
            break
        _, i = min(pairs)
        parts[i : i + 2] = [parts[i] + parts[i + 1]]
    if len(parts) != 2:
        raise MiniGPTError(f"token {token!r} cannot be built by BPE merges of lower rank")
    return parts[0], parts[1]


def tiktoken_tokenizer_json(enc: Any) -> dict[str, Any]:
    """A tiktoken byte-level BPE encoding (GPT-2's) as a tokenizers-library file.

    The merges are recovered from the ranks (each token's last merge, in rank order) and
    the bytes written with GPT-2's byte-to-character table: what GPT-2's own tokenizer.json
    holds. Only GPT-2's pre-tokenization pattern can be expressed.
    """
    if getattr(enc, "_pat_str", GPT2_PATTERNS[0]) not in GPT2_PATTERNS:
        raise MiniGPTError(
            f"tiktoken encoding {enc.name!r} splits text with another pattern than GPT-2's; "
            "only GPT-2-style encodings can be exported"
        )
    lib = _tokenizers_lib()
    table = byte_to_unicode()
    ranks = {b: enc.encode_single_token(b) for b in enc.token_byte_values()}

    def text(b: bytes) -> str:
        return "".join(table[x] for x in b)

    merges = [
        (text(a), text(b))
        for token, _ in sorted(ranks.items(), key=lambda kv: kv[1])
        if len(token) > 1
        for a, b in [_last_merge(ranks, token)]
    ]
    specials = {name: enc.encode_single_token(name) for name in enc.special_tokens_set}
    vocab = {**{text(b): r for b, r in ranks.items()}, **specials}  # as in GPT-2's file
    hf = lib.Tokenizer(lib.models.BPE(vocab=vocab, merges=merges))
    hf.pre_tokenizer = lib.pre_tokenizers.ByteLevel(add_prefix_space=False)
    hf.decoder = lib.decoders.ByteLevel()
    hf.add_special_tokens(sorted(specials, key=specials.get))
    return json.loads(hf.to_str())


def tokenizer_json(tok: Tokenizer) -> dict[str, Any]:
    """The ``tokenizers``-library JSON of any minigpt tokenizer that has one.

    char: built (``char_tokenizer_json``); BPE kinds stored as tokenizers files: that file;
    kinds that encode with a tiktoken Encoding held as ``.enc`` (GPT-2's): converted.
    """
    if isinstance(tok, CharTokenizer):
        return char_tokenizer_json(tok)
    data = dict(tok.to_json())
    if "model" not in data:
        enc = getattr(tok, "enc", None)
        if hasattr(enc, "token_byte_values"):
            return tiktoken_tokenizer_json(enc)
        raise MiniGPTError(
            f"the {tok.kind!r} tokenizer has no Hugging Face tokenizers form; export supports "
            "char, BPE (tokenizers-library) and GPT-2 (tiktoken) tokenizers"
        )
    data.pop("kind", None)  # minigpt's own tag, if the file carries one
    lib = _tokenizers_lib()
    try:
        lib.Tokenizer.from_str(json.dumps(data))
    except Exception as e:  # the library raises plain Exceptions for bad files
        raise MiniGPTError(f"the tokenizer's JSON is not a valid tokenizers file ({e})") from None
    return data


def tokenizer_config(tok: Tokenizer, block_size: int) -> dict[str, Any]:
    """``tokenizer_config.json``: load as a fast tokenizer that leaves the text alone."""
    config: dict[str, Any] = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": block_size,
        "clean_up_tokenization_spaces": False,
    }
    specials = tok.special_tokens
    eot = next((name for name, i in specials.items() if i == tok.eot_id), None)
    if eot is not None:
        config.update(bos_token=eot, eos_token=eot)
    if CharTokenizer.UNK in specials:
        config["unk_token"] = CharTokenizer.UNK
    if tok.chat_template is not None:  # what apply_chat_template renders: what minigpt trained on
        config["chat_template"] = tok.chat_template
    return config


def tokenizer_from_hf(folder: Path) -> Tokenizer:
    """A minigpt tokenizer for a Hugging Face folder's tokenizer.

    minigpt's own char export comes back as a CharTokenizer; any other ``tokenizer.json``
    loads as a BPE tokenizer. Without tokenizer.json (only vocab.json and merges.txt), the
    fast tokenizer is built with transformers, when it is installed.
    """
    path = folder / TOKENIZER_FILE
    if not path.is_file():
        return load_tokenizer_via_transformers(folder)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise MiniGPTError(f"{path} is not valid JSON ({e})") from None
    char = char_tokenizer_from_json(data)
    tok = char if char is not None else load_tokenizer(path)
    tok.chat_template = tok.chat_template or _hf_chat_template(folder)
    return tok


def _hf_chat_template(folder: Path) -> str | None:
    """The folder's chat template: ``chat_template.jinja`` or ``tokenizer_config.json``'s."""
    path = folder / HF_TOKENIZER_CONFIG
    try:
        template = json.loads(path.read_text(encoding="utf-8")).get("chat_template")
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        template = None
    return template if isinstance(template, str) else None


def load_tokenizer_via_transformers(folder: Path) -> Tokenizer:
    if not any((folder / f).is_file() for f in ("vocab.json", "tokenizer.model")):
        raise MiniGPTError(f"{folder} holds no tokenizer ({TOKENIZER_FILE} or vocab.json)")
    transformers = import_transformers(f"reading the tokenizer in {folder} (no {TOKENIZER_FILE})")
    fast = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
    backend = getattr(fast, "backend_tokenizer", None)
    if backend is None:
        raise MiniGPTError(f"the tokenizer in {folder} has no fast (tokenizers) form")
    with tempfile.TemporaryDirectory() as tmp:  # load_tokenizer reads files
        path = Path(tmp) / TOKENIZER_FILE
        path.write_text(backend.to_str(), encoding="utf-8")
        return load_tokenizer(path)


def import_transformers(why: str) -> Any:
    """``transformers``, offline: never a download, even if a name looks like a hub id."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import transformers
    except ImportError:
        raise MiniGPTError(f"{why} needs transformers; pip install 'minigpt[hf]'") from None
    return transformers


def load_hf_tokenizer(ref: str | Path) -> Tokenizer:
    """The tokenizer of ``hf:DIR``, for ``minigpt prepare --tokenizer hf:DIR``."""
    return tokenizer_from_hf(hf_folder(ref))
