"""minigpt prepare: text files or folders -> dataset folder."""

from __future__ import annotations

import argparse
import re
from typing import TYPE_CHECKING

from minigpt.cli.common import check_torch
from minigpt.config.probe import ProbeConfig
from minigpt.data.defaults import SHARD_TOKENS, TOKENIZER_SAMPLE_BYTES
from minigpt.errors import MiniGPTError

if TYPE_CHECKING:  # the stages import numpy and ftfy: loaded in the functions that run them
    from minigpt.data.clean import CleanConfig
    from minigpt.data.sources import SourceOptions

DEFAULT_VOCAB = 32000
UNITS = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


def parse_size(value: str) -> int:
    """'100MB', '2G', '1.5k' or a plain number (of bytes or tokens)."""
    m = re.fullmatch(r"\s*([\d.]+)\s*([kKmMgGtT]?)[bB]?\s*", value)
    try:
        return int(float(m.group(1)) * UNITS[m.group(2).upper()]) if m else int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {value!r} (e.g. 100MB)") from None


def add_reading_arguments(p: argparse.ArgumentParser) -> None:
    """Flags shared by `prepare` and `tokenizer train`: which files, how to read and clean."""
    g = p.add_argument_group("inputs")
    g.add_argument("--include", action="append", default=[], metavar="GLOB",
                   help="in folders, read only files matching GLOB (repeatable)")  # fmt: skip
    g.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                   help="skip files matching GLOB (repeatable)")  # fmt: skip
    g.add_argument("--text-field", default="text",
                   help="jsonl field or parquet column holding the text (text)")  # fmt: skip
    g.add_argument("--paragraphs", action="store_true",
                   help="one document per blank-line separated paragraph of text files")  # fmt: skip
    g.add_argument("--encoding", default="utf-8", help="text encoding of the inputs (utf-8)")
    g.add_argument("--errors", default="strict", choices=["strict", "replace"],
                   help="invalid bytes: stop with their offset, or replace them with U+FFFD")  # fmt: skip
    g.add_argument("--strict", action="store_true",
                   help="refuse binary files instead of skipping them with a warning")  # fmt: skip
    g.add_argument("--skip-bad-lines", action="store_true",
                   help="jsonl: skip lines that are not JSON (counted in the report) instead "
                   "of stopping")  # fmt: skip
    c = p.add_argument_group("cleaning (all on by default)")
    c.add_argument("--no-mojibake", action="store_true", help="keep mis-decoded text as it is")
    c.add_argument("--no-control-chars", action="store_true", help="keep control characters")
    c.add_argument("--no-nfc", action="store_true", help="skip Unicode NFC normalisation")
    c.add_argument("--no-dedupe", action="store_true", help="keep exact duplicate documents")
    c.add_argument("--min-chars", type=int, default=0,
                   help="drop documents shorter than this many characters (0)")  # fmt: skip
    p.add_argument("--unknown", default="error", choices=["error", "unk"],
                   help="char tokenizer, characters unseen in training: refuse, or map to <unk>")  # fmt: skip
    p.add_argument("--seed", type=int, default=1337, help="seed for sampling and the split")
    p.add_argument("--workers", type=int, help="processes for cleaning and encoding (all cores)")


def source_options(args: argparse.Namespace) -> SourceOptions:
    from minigpt.data.sources import SourceOptions

    return SourceOptions(
        include=args.include,
        exclude=args.exclude,
        text_field=args.text_field,
        paragraphs=args.paragraphs,
        encoding=args.encoding,
        errors=args.errors,
        strict=args.strict,
        skip_bad_lines=args.skip_bad_lines,
    )


def clean_config(args: argparse.Namespace) -> CleanConfig:
    from minigpt.data.clean import CleanConfig

    if args.min_chars < 0:
        raise MiniGPTError(f"--min-chars must be 0 or more, got {args.min_chars}")
    return CleanConfig(
        fix_mojibake=not args.no_mojibake,
        control_chars=not args.no_control_chars,
        nfc=not args.no_nfc,
        dedupe=not args.no_dedupe,
        min_chars=args.min_chars,
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "prepare",
        help="clean and tokenize text into a dataset folder",
        description=(
            "Turn text, jsonl or parquet files (optionally .gz/.zst) or folders into token "
            "shards, tokenizer.json and meta.json (with a dataset report)."
        ),
    )
    p.add_argument("inputs", nargs="+", help="files and/or folders (searched recursively)")
    p.add_argument("--out", required=True, help="dataset folder to create")
    p.add_argument(
        "--tokenizer",
        default="char",
        metavar="KIND_OR_PATH",
        help="char, bpe (trained here), gpt2, the path of a tokenizer.json to reuse, hf:DIR "
        "for the tokenizer of a Hugging Face model folder (to fine-tune it), or auto: char or "
        "a bpe size, chosen by a quick probe of tiny models (char)",
    )
    p.add_argument("--vocab-size", type=int, help=f"bpe vocabulary size ({DEFAULT_VOCAB})")
    p.add_argument(
        "--tokenizer-sample-bytes",
        type=parse_size,
        default=TOKENIZER_SAMPLE_BYTES,
        help="train the tokenizer on a random sample of about this much text (100MB)",
    )
    p.add_argument("--val-fraction", type=float, default=0.1, help="share for validation (0.1)")
    p.add_argument(
        "--split",
        default="auto",
        choices=["auto", "documents", "tail"],
        help="val = whole documents, or the tail of the token stream (auto: tail for char; "
        "documents otherwise, or tail when there are too few documents)",
    )
    p.add_argument(
        "--shard-tokens",
        type=parse_size,
        default=SHARD_TOKENS,
        help=f"start a new shard file every this many tokens ({SHARD_TOKENS:,})",
    )
    add_reading_arguments(p)
    add_probe_arguments(p)
    add_chat_arguments(p)
    p.add_argument("--force", action="store_true", help="replace an existing output folder")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    # Cleaning and tokenizing need no torch; --tokenizer auto (it trains models) checks it.
    text_defaults = {dest: p.get_default(dest) for dest in TEXT_ONLY}
    p.set_defaults(func=run, needs_torch=False, text_defaults=text_defaults)


def add_probe_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("--tokenizer auto (see docs/data.md)")
    d = ProbeConfig()
    g.add_argument("--probe-steps", type=int,
                   help=f"training steps of each candidate's tiny model ({d.steps})")  # fmt: skip
    g.add_argument("--probe-bytes", type=parse_size,
                   help=f"text the probe trains and scores on ({d.probe_bytes // 10**6}MB)")  # fmt: skip
    g.add_argument("--probe-threads", type=int,
                   help=f"torch threads of the probe's training ({d.threads})")  # fmt: skip


def probe_config(args: argparse.Namespace) -> ProbeConfig:
    given = {
        "steps": args.probe_steps,
        "probe_bytes": args.probe_bytes,
        "threads": args.probe_threads,
    }
    given = {k: v for k, v in given.items() if v is not None}
    if args.tokenizer != "auto":
        if given:
            flag = "--probe-" + next(iter(given)).replace("probe_", "").replace("_", "-")
            raise MiniGPTError(f"{flag} only applies to --tokenizer auto")
        return ProbeConfig()
    if args.vocab_size is not None:
        raise MiniGPTError("--tokenizer auto chooses the vocabulary size; drop --vocab-size")
    if args.format == "chat":
        raise MiniGPTError("--tokenizer auto is for text datasets; give chat data a tokenizer")
    return ProbeConfig(seed=args.seed, **given)


def add_chat_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("chat data (--format chat; see docs/sft.md)")
    g.add_argument("--format", default="text", choices=["text", "chat"],
                   help="text (pretraining), or chat: conversations with a loss mask (text)")  # fmt: skip
    g.add_argument("--chat-template", metavar="FILE",
                   help="Jinja chat template (default: minigpt's, with <|user|> ... <|end|>)")  # fmt: skip
    g.add_argument("--field", action="append", default=[], metavar="NAME=FIELD",
                   help="read a chat field under another name, e.g. output=answer (repeatable)")  # fmt: skip
    g.add_argument("--block-size", type=int, default=256,
                   help="longest conversation kept, in tokens: the block size you will train (256)")  # fmt: skip
    g.add_argument("--long", default="truncate", choices=["truncate", "drop"],
                   help="conversations past the block: cut after the last reply that fits, or drop")  # fmt: skip


# Flags of text datasets that chat data has no use for, and why: given to --format chat,
# each is refused rather than silently ignored.
TEXT_ONLY = {
    "text_field": "name chat fields with --field, e.g. --field messages=dialog",
    "paragraphs": "each jsonl line or parquet row is one conversation",
    "no_mojibake": "conversations are kept as written, never cleaned",
    "no_control_chars": "conversations are kept as written, never cleaned",
    "no_nfc": "conversations are kept as written, never cleaned",
    "no_dedupe": "conversations are kept as written, never cleaned",
    "min_chars": "conversations are kept as written, never cleaned",
    "unknown": "the char vocabulary is built from every conversation",
    "split": "val is always whole conversations",
    "shard_tokens": "each split is one file",
    "tokenizer_sample_bytes": "bpe is trained on every conversation",
    "workers": "conversations are read in one process",
}


def refuse_text_only_flags(args: argparse.Namespace, defaults: dict[str, object]) -> None:
    """One line for the first text-only flag given to ``--format chat`` (a value other than
    its default): what it is for, and why chat data has no use for it."""
    for dest, why in TEXT_ONLY.items():
        if getattr(args, dest) != defaults[dest]:
            flag = "--" + dest.replace("_", "-")
            raise MiniGPTError(f"{flag} does not apply to --format chat ({why}); leave it out")


def run_chat(args: argparse.Namespace) -> int:
    from minigpt.data.chat import ChatFields
    from minigpt.data.chat_prepare import prepare_chat_dataset

    refuse_text_only_flags(args, args.text_defaults)
    sources = source_options(args)  # --strict holds as it is: chat never skips a file
    prepare_chat_dataset(
        args.inputs,
        args.out,
        tokenizer=args.tokenizer,
        template=args.chat_template,
        block_size=args.block_size,
        long=args.long,
        val_fraction=args.val_fraction,
        seed=args.seed,
        vocab_size=DEFAULT_VOCAB if args.vocab_size is None else args.vocab_size,
        fields=ChatFields.parse(args.field),
        force=args.force,
        quiet=args.quiet,
        include=sources.include,
        exclude=sources.exclude,
        encoding=sources.encoding,
        errors=sources.errors,
        skip_bad_lines=sources.skip_bad_lines,
    )
    return 0


def run(args: argparse.Namespace) -> int:
    probe = probe_config(args)
    if args.format == "chat":
        return run_chat(args)
    sources = source_options(args)
    options = dict(
        tokenizer_sample_bytes=args.tokenizer_sample_bytes,
        val_fraction=args.val_fraction,
        split=args.split,
        seed=args.seed,
        shard_tokens=args.shard_tokens,
        include=sources.include,
        exclude=sources.exclude,
        text_field=sources.text_field,
        paragraphs=sources.paragraphs,
        encoding=sources.encoding,
        errors=sources.errors,
        strict=sources.strict,
        skip_bad_lines=sources.skip_bad_lines,
        clean=clean_config(args),
        unknown=args.unknown,
        workers=args.workers,
    )
    if args.tokenizer == "auto":
        check_torch()
        from minigpt.sweep.tokenizer_probe import prepare_auto

        prepare_auto(
            args.inputs, args.out, probe=probe, force=args.force, quiet=args.quiet, **options
        )
        return 0
    from minigpt.data.prepare import prepare_dataset

    prepare_dataset(
        args.inputs,
        args.out,
        tokenizer=args.tokenizer,
        vocab_size=DEFAULT_VOCAB if args.vocab_size is None else args.vocab_size,
        force=args.force,
        quiet=args.quiet,
        **options,
    )
    return 0
