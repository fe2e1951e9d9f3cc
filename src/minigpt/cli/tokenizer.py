"""minigpt tokenizer train | encode | decode | inspect: work with a tokenizer on its own."""

from __future__ import annotations

import argparse
import sys

from minigpt.cli.prepare import add_reading_arguments, clean_config, parse_size, source_options
from minigpt.data.defaults import TOKENIZER_SAMPLE_BYTES
from minigpt.errors import MiniGPTError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "tokenizer",
        help="train, use and inspect tokenizers",
        description="Train a tokenizer on text, or encode, decode and inspect text with one.",
    )
    p.set_defaults(needs_torch=False)  # every action: tokenizers are plain Python and Rust
    sub = p.add_subparsers(dest="action", metavar="ACTION", parser_class=type(p))
    sub.required = True

    t = sub.add_parser("train", help="train a tokenizer on files or folders")
    t.add_argument("inputs", nargs="+", help="text, jsonl or parquet files and/or folders")
    t.add_argument("--out", required=True, help="tokenizer.json file or folder to write")
    t.add_argument("--kind", default="bpe", choices=["bpe", "char"], help="tokenizer kind (bpe)")
    t.add_argument("--vocab-size", type=int, default=32000, help="bpe vocabulary size (32000)")
    t.add_argument(
        "--sample-bytes",
        type=parse_size,
        default=TOKENIZER_SAMPLE_BYTES,
        help="train on a random sample of about this much text (e.g. 100MB)",
    )
    add_reading_arguments(t)
    t.set_defaults(func=run_train)

    for name, what in (("encode", "text -> ids"), ("inspect", "show how text is split")):
        e = sub.add_parser(name, help=what)
        e.add_argument("tokenizer", help="tokenizer.json, or a dataset or run folder")
        e.add_argument("text", nargs="?", help="the text ('-' reads standard input)")
        e.add_argument("--file", help="read the text from this file")
        e.set_defaults(func=run_encode if name == "encode" else run_inspect)

    d = sub.add_parser("decode", help="ids -> text")
    d.add_argument("tokenizer", help="tokenizer.json, or a dataset or run folder")
    d.add_argument("ids", nargs="+", help="token ids ('-' reads them from standard input)")
    d.set_defaults(func=run_decode)


def _text(args: argparse.Namespace) -> str | None:
    if args.file:
        try:
            with open(args.file, encoding="utf-8") as f:
                return f.read()
        except OSError as e:
            raise MiniGPTError(f"cannot read {args.file} ({e.strerror}); check the path") from None
    if args.text == "-":
        return sys.stdin.read()
    return args.text


def run_train(args: argparse.Namespace) -> int:
    from minigpt.data.tokenizer_training import train_tokenizer

    train_tokenizer(
        args.inputs,
        args.out,
        kind=args.kind,
        vocab_size=args.vocab_size,
        sample_bytes=args.sample_bytes,
        sources=source_options(args),
        clean=clean_config(args),
        unknown=args.unknown,
        seed=args.seed,
        workers=args.workers,
    )
    return 0


def run_encode(args: argparse.Namespace) -> int:
    from minigpt.data.tokenizer import load_tokenizer

    tok = load_tokenizer(args.tokenizer)
    text = _text(args)
    if text is None:
        raise MiniGPTError("no text given; pass it as an argument, with --file, or on stdin")
    print(" ".join(map(str, tok.encode(text))))
    return 0


def run_decode(args: argparse.Namespace) -> int:
    from minigpt.data.tokenizer import load_tokenizer

    tok = load_tokenizer(args.tokenizer)
    words = sys.stdin.read().split() if args.ids == ["-"] else args.ids
    try:
        ids = [int(w) for w in words]
    except ValueError:
        raise MiniGPTError("ids must be whole numbers, e.g. `decode TOK 12 345 6`") from None
    bad = [i for i in ids if not 0 <= i < tok.vocab_size]
    if bad:
        raise MiniGPTError(
            f"id {bad[0]} is outside the vocabulary (0 to {tok.vocab_size - 1}); check the ids"
        )
    sys.stdout.write(tok.decode(ids) + "\n")
    return 0


def run_inspect(args: argparse.Namespace) -> int:
    from minigpt.data.tokenizer import describe_tokenizer, inspect_text, load_tokenizer

    tok = load_tokenizer(args.tokenizer)
    print(describe_tokenizer(tok))
    text = _text(args)
    if text:
        print(inspect_text(tok, text))
    return 0
