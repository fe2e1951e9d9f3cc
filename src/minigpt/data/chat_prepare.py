"""``minigpt prepare --format chat``: conversations become a chat dataset with a loss mask.

A chat dataset folder is a dataset folder (``train.bin``, ``val.bin``, ``tokenizer.json``,
``meta.json``) plus, per split:

- ``SPLIT.mask.bin``: one uint8 per token, 1 where the token belongs to a reply (the tokens the
  model is trained to predict), aligned with ``SPLIT.bin``;
- ``SPLIT.offsets.bin``: int64 boundaries of the conversations in the token stream (n + 1).

``meta.json`` says ``"format": "chat"`` (in ``extra``) and records the template, the counts of
skipped, truncated and dropped conversations, and the reply tokens and bytes per split (for
evaluation in bits per byte). The chat template is saved next to the tokenizer as
``chat_template.jinja`` and travels with it into every run and export.

Conversations are kept whole: the split takes whole conversations (seeded), and a conversation
longer than ``block_size + 1`` tokens is cut after its last reply that fits (``long="truncate"``)
or left out (``long="drop"``), counted either way.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from minigpt._version import __version__
from minigpt.data.chat import SKIPS, ChatFields, Conversation, read_conversations
from minigpt.data.chat_template import (
    DEFAULT_TEMPLATE,
    TokenizedChat,
    render,
    template_tokens,
    tokenize_conversation,
)
from minigpt.data.hf_tokenizer import HF_PREFIX, load_hf_tokenizer
from minigpt.data.meta import (
    DatasetMeta,
    SplitInfo,
    check_output_folder,
    publish,
    source_files,
    staged,
    token_dtype,
)
from minigpt.data.shards import write_array
from minigpt.data.sources import SourceOptions, find_inputs
from minigpt.data.special_tokens import add_special_tokens
from minigpt.data.tokenizer import (
    TOKENIZER_FILE,
    BPETokenizer,
    CharTokenizer,
    Tokenizer,
    check_vocab_size,
    load_tokenizer,
)
from minigpt.errors import MiniGPTError

CHAT_FORMAT = "chat"
LONG_POLICIES = ("truncate", "drop")
MASK_SUFFIX = ".mask.bin"
OFFSETS_SUFFIX = ".offsets.bin"


def load_template(template: str | Path | None) -> str:
    """The template source: the default for None, else the text of a file."""
    if template is None or str(template) == "default":
        return DEFAULT_TEMPLATE
    path = Path(template)
    if not path.is_file():
        raise MiniGPTError(
            f"chat template {path} does not exist; pass a Jinja file or leave --chat-template out"
        )
    return path.read_text(encoding="utf-8")


def _tokenizer(
    spec: str | Path | Tokenizer, source: str, texts: list[str], vocab: int
) -> tuple[Tokenizer, str | None]:
    """The tokenizer to use, trained or loaded, with the template's special tokens; and the
    fingerprint of the loaded one before they were added (None for a trained one)."""
    tokens = template_tokens(source)
    plain = [_strip(t, tokens) for t in texts]  # tokenizers learn from the text alone
    if isinstance(spec, Tokenizer):
        tok = spec
    elif str(spec).startswith(HF_PREFIX):
        tok = load_hf_tokenizer(str(spec))
    elif str(spec) == "char":
        return CharTokenizer(sorted(set("".join(plain))), specials=tokens), None
    elif str(spec) == "bpe":
        check_vocab_size(vocab)
        return BPETokenizer.train(plain, vocab, special_tokens=tokens), None
    elif Path(spec).exists():
        tok = load_tokenizer(spec)
    else:
        raise MiniGPTError(
            f"unknown tokenizer {str(spec)!r}; choose char or bpe, or give the path of an "
            "existing tokenizer.json (or hf:DIR)"
        )
    return add_special_tokens(tok, tokens)[0], tok.fingerprint()


def _strip(text: str, tokens: Sequence[str]) -> str:
    for name in tokens:
        text = text.replace(name, "")
    return text


def _fit(chat: TokenizedChat, limit: int, long: str) -> TokenizedChat | None:
    """The conversation within ``limit`` tokens: whole, cut after a reply, or None."""
    if len(chat.ids) <= limit:
        return chat
    if long == "drop":
        return None
    keep = [i for i, (token_end, _) in enumerate(chat.reply_ends) if token_end <= limit]
    if not keep:
        return None
    n = keep[-1] + 1
    token_end, char_end = chat.reply_ends[keep[-1]]
    return TokenizedChat(
        chat.ids[:token_end],
        chat.mask[:token_end],
        chat.text[:char_end],
        chat.reply_ends[:n],
        chat.reply_bytes[:n],
    )


def prepare_chat_dataset(
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    *,
    tokenizer: str | Path | Tokenizer = "char",
    template: str | Path | None = None,
    block_size: int = 256,
    long: str = "truncate",
    val_fraction: float = 0.1,
    seed: int = 1337,
    vocab_size: int = 32000,
    fields: ChatFields | None = None,
    force: bool = False,
    quiet: bool = False,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    encoding: str = "utf-8",
    errors: str = "strict",
    skip_bad_lines: bool = False,
) -> Path:
    """Read conversations from ``inputs`` into the chat dataset ``out_dir``; see the module
    docstring. The inputs are found and decoded as ``prepare_dataset`` does it (``include``,
    ``exclude``, ``encoding``, ``errors``); ``skip_bad_lines``: jsonl lines that are not JSON
    are skipped and counted, not an error. Returns the dataset folder."""
    if long not in LONG_POLICIES:
        raise MiniGPTError(f"--long must be one of {', '.join(LONG_POLICIES)}, not {long!r}")
    if not 0.0 < val_fraction < 1.0:
        raise MiniGPTError(f"val fraction must be between 0 and 1, got {val_fraction}")
    if block_size < 2:
        raise MiniGPTError(f"block size must be at least 2, got {block_size}")
    out = Path(out_dir)
    check_output_folder(out, force)
    start = time.time()
    source = load_template(template)
    opts = SourceOptions(
        include=include,
        exclude=exclude,
        encoding=encoding,
        errors=errors,
        skip_bad_lines=skip_bad_lines,
    )
    notes = opts.notes
    files = find_inputs(inputs, include, exclude, not_followed=notes.not_followed)
    counts = {"read": 0, **dict.fromkeys(SKIPS, 0), "truncated": 0, "dropped_long": 0}
    conversations: list[Conversation] = []
    for conv in read_conversations(files, fields or ChatFields(), opts):
        counts["read"] += 1
        if conv.skip:
            counts[conv.skip] += 1
        else:
            conversations.append(conv)
    if not conversations:
        raise MiniGPTError(
            f"no usable conversation in the inputs ({counts['read']} read, "
            f"{counts['no_answer']} without a reply, {counts['empty_answer']} with an empty one)"
        )
    texts = [render(source, c.messages) for c in conversations]
    tok, base = _tokenizer(tokenizer, source, texts, vocab_size)
    tok.chat_template = source
    chats = []
    for conv in conversations:
        chat = tokenize_conversation(source, tok, conv.messages)
        fitted = _fit(chat, block_size + 1, long)
        if fitted is None:
            counts["dropped_long"] += 1
        else:
            counts["truncated"] += fitted is not chat
            chats.append(fitted)
    if len(chats) < 2:
        raise MiniGPTError(
            f"{len(chats)} conversation(s) fit in block size {block_size} ({counts['dropped_long']}"
            " too long); train and val need one each: raise --block-size or add conversations"
        )
    order = np.random.default_rng(seed).permutation(len(chats))
    n_val = max(1, round(len(chats) * val_fraction))
    parts = {"val": order[:n_val], "train": order[n_val:]}
    with staged(out) as tmp:
        tok.save(tmp)
        dtype = token_dtype(tok.vocab_size)
        splits, replies = {}, {}
        for name in ("train", "val"):
            picked = [chats[i] for i in parts[name]]
            splits[name], replies[name] = _write_split(tmp, name, picked, dtype)
        counts["kept"] = len(chats)
        meta = DatasetMeta(
            tokenizer={
                "kind": tok.kind,
                "vocab_size": tok.vocab_size,
                "file": TOKENIZER_FILE,
                "fingerprint": tok.fingerprint(),
                "special_tokens": tok.special_tokens,
            },
            dtype=dtype.name,
            splits=splits,
            sources=source_files(files),
            val_fraction=val_fraction,
            created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            minigpt_version=__version__,
            extra={
                "format": CHAT_FORMAT,
                "seed": seed,
                "chat": {
                    "template": source,
                    "block_size": block_size,
                    "long": long,
                    # the tokenizer this one extends: a model trained with it can be tuned here
                    "base_fingerprint": base,
                },
            },
            report={
                "conversations": counts,
                "replies": replies,
                "reading": notes.report(),
                "seconds": {"total": round(time.time() - start, 3)},
            },
        )
        notes.check_files(files)  # also while they were hashed
        publish(tmp, out, meta)
    if not quiet:
        print(format_chat_report(out, meta))
    return out


def _write_split(
    folder: Path, name: str, chats: list[TokenizedChat], dtype: np.dtype
) -> tuple[SplitInfo, dict]:
    ids = np.concatenate([c.ids for c in chats]).astype(dtype)
    mask = np.concatenate([c.mask for c in chats]).astype(np.uint8)
    offsets = np.cumsum([0, *(len(c.ids) for c in chats)]).astype("<i8")
    write_array(ids, folder / f"{name}.bin")
    write_array(mask, folder / f"{name}{MASK_SUFFIX}")
    write_array(offsets, folder / f"{name}{OFFSETS_SUFFIX}")
    info = SplitInfo(
        files=[f"{name}.bin"],
        tokens=int(ids.size),
        chars=sum(len(c.text) for c in chats),
        bytes=sum(len(c.text.encode("utf-8")) for c in chats),
        documents=len(chats),
    )
    # The first token of a conversation is never predicted; a reply never starts one.
    replies = {"tokens": int(mask.sum()), "bytes": sum(sum(c.reply_bytes) for c in chats)}
    return info, replies


def format_chat_report(out: Path, meta: DatasetMeta) -> str:
    """The chat dataset report as a few readable lines."""
    c, r = meta.report["conversations"], meta.report["replies"]
    lines = [
        f"prepared chat dataset {out}: {meta.tokenizer['kind']} tokenizer, vocab "
        f"{meta.tokenizer['vocab_size']:,}, block size {meta.extra['chat']['block_size']}"
    ]
    for name, s in meta.splits.items():
        lines.append(
            f"  {name:5s} {s.documents:>8,} conversations {s.tokens:>12,} tokens, "
            f"{r[name]['tokens']:,} of them in replies (trained on)"
        )
    lines.append(
        f"  conversations: {c['read']:,} read, {c['kept']:,} kept; skipped {c['no_answer']:,} "
        f"without a reply, {c['empty_answer']:,} with an empty reply; "
        f"{c['truncated']:,} truncated, {c['dropped_long']:,} dropped as too long"
    )
    if meta.report.get("reading", {}).get("summary"):
        lines.append(f"  reading: {meta.report['reading']['summary']}")
    return "\n".join(lines)


def is_chat_meta(meta: DatasetMeta) -> bool:
    """Whether a dataset was prepared with ``--format chat``."""
    return meta.extra.get("format") == CHAT_FORMAT
