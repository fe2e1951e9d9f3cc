"""minigpt export: a run or checkpoint as a Hugging Face model folder."""

from __future__ import annotations

import argparse

from minigpt.interop.hf_export import DTYPES, LOGITS_TOLERANCE, export_hf

FORMATS = ("hf",)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export",
        help="write a trained model in the Hugging Face format",
        description="Write a run's newest good checkpoint (or a checkpoint folder) as a folder "
        "that transformers loads offline: config.json (GPT2LMHeadModel), model.safetensors, "
        "tokenizer files, generation_config.json and a README model card.",
    )
    p.add_argument("checkpoint", help="run folder (newest good checkpoint) or checkpoint folder")
    p.add_argument("--out", required=True, help="folder to create")
    p.add_argument("--format", default="hf", choices=FORMATS, help="output format (hf)")
    p.add_argument("--dtype", default="float32", choices=list(DTYPES), help="weights (float32)")
    p.add_argument("--best", action="store_true", help="the run's best checkpoint by val loss")
    p.add_argument("--force", action="store_true", help="replace an existing output folder")
    p.add_argument(
        "--no-remote-code",
        action="store_true",
        help="refuse a model no transformers class computes exactly, instead of writing "
        "minigpt's own model code into the folder (trust_remote_code=True)",
    )
    p.add_argument(
        "--no-check",
        action="store_true",
        help="skip loading the export with transformers to compare its logits and tokenizer",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    result = export_hf(
        args.checkpoint,
        args.out,
        dtype=args.dtype,
        force=args.force,
        check=not args.no_check,
        best=args.best,
        remote_code=not args.no_remote_code,
    )
    print(
        f"exported {result.checkpoint} (iteration {result.iteration}) to {result.folder} "
        f"as {result.architecture}: " + ", ".join(result.files)
    )
    for note in result.notes:
        print(f"note: {note}")
    if result.max_logit_diff is not None:
        print(
            f"checked with transformers: logits match minigpt's (max difference "
            f"{result.max_logit_diff:.1e} <= {LOGITS_TOLERANCE:g}), tokenizer ids match"
        )
    elif not args.no_check:
        print("not checked: transformers is not installed (pip install 'minigpt[hf]')")
    return 0
