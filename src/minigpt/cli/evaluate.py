"""minigpt eval: loss, perplexity and bits per byte of a checkpoint over a whole text."""

from __future__ import annotations

import argparse
import json

from minigpt.cli.common import add_memory_check_argument
from minigpt.cli.sample import add_quantize_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval",
        help="loss, perplexity and bits per byte of a model on a text or dataset split",
        description="Evaluate a run folder (newest good checkpoint) or checkpoint folder on "
        "every token of a text file or of a prepared dataset's split. Bits per byte compares "
        "models with different tokenizers.",
    )
    p.add_argument("checkpoint", help="run folder, checkpoint folder or hf:DIR (a GPT-2 folder)")
    p.add_argument("--data", required=True, help="text file, or dataset folder (`minigpt prepare`)")
    p.add_argument("--split", default="val", help="split of a dataset folder (val)")
    p.add_argument("--best", action="store_true", help="the run's best checkpoint by val loss")
    p.add_argument("--batch-size", type=int, default=8, help="windows per forward pass (8)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    p.add_argument("--dtype", default="float32", choices=["auto", "float32", "bfloat16", "float16"])
    add_quantize_argument(p)
    add_memory_check_argument(p)
    p.add_argument("--json", action="store_true", help="print the numbers as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from minigpt.evaluation.evaluate import evaluate_checkpoint

    result = evaluate_checkpoint(
        args.checkpoint,
        args.data,
        split=args.split,
        batch_size=args.batch_size,
        device=args.device,
        dtype=args.dtype,
        progress=not args.no_progress,
        best=args.best,
        quantize=args.quantize,
    )
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        print(
            f"loss {result.loss:.4f} | perplexity {result.perplexity:.3f} | "
            f"{result.bits_per_byte:.4f} bits per byte | {result.tokens:,} tokens, "
            f"{result.bytes:,} bytes"
        )
    return 0
