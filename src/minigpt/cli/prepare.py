"""minigpt prepare: text files or folders -> dataset folder."""

from __future__ import annotations

import argparse

from minigpt.prepare import prepare_dataset


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "prepare",
        help="tokenize text files into a dataset folder",
        description="Turn text files or folders into train.bin, val.bin, tokenizer.json and meta.json.",
    )
    p.add_argument("inputs", nargs="+", help="text files and/or folders (searched recursively)")
    p.add_argument("--out", required=True, help="dataset folder to create")
    p.add_argument(
        "--tokenizer",
        default="char",
        metavar="KIND",
        help="char, or hf:DIR for the tokenizer of a Hugging Face model folder (to fine-tune it)",
    )
    p.add_argument("--val-fraction", type=float, default=0.1, help="share for validation (0.1)")
    p.add_argument("--encoding", default="utf-8", help="text encoding of the inputs (utf-8)")
    p.add_argument(
        "--unknown",
        default="error",
        choices=["error", "unk"],
        help="characters unseen in training: refuse them, or map them to <unk>",
    )
    p.add_argument("--force", action="store_true", help="replace an existing output folder")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    prepare_dataset(
        args.inputs,
        args.out,
        tokenizer=args.tokenizer,
        val_fraction=args.val_fraction,
        encoding=args.encoding,
        unknown=args.unknown,
        force=args.force,
    )
    return 0
