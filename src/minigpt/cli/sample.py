"""minigpt sample: generate text from a checkpoint, streamed to the terminal."""

from __future__ import annotations

import argparse
import sys

from minigpt.sample import generate_text, load_model


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "sample",
        help="generate text from a trained model",
        description="Generate samples from a run folder or checkpoint folder.",
    )
    p.add_argument("checkpoint", help="run folder (newest good checkpoint) or checkpoint folder")
    p.add_argument("--prompt", default="", help="text to continue (default: start fresh)")
    p.add_argument("-n", "--num-samples", type=int, default=1, help="number of samples (1)")
    p.add_argument("-m", "--max-new-tokens", type=int, default=500, help="tokens per sample (500)")
    p.add_argument("--temperature", type=float, default=0.8, help="0 is greedy (0.8)")
    p.add_argument("--top-k", type=int, default=200, help="sample from the k likeliest (200)")
    p.add_argument("--seed", type=int, default=1337, help="random seed (1337)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    model, tokenizer = load_model(args.checkpoint, device=args.device)
    for i in range(args.num_samples):
        if args.num_samples > 1:
            print(f"--- sample {i + 1} ---")
        sys.stdout.write(args.prompt)
        generate_text(
            model,
            tokenizer,
            args.prompt,
            args.max_new_tokens,
            args.temperature,
            args.top_k,
            args.seed + i,
            on_text=lambda piece: print(piece, end="", flush=True),
        )
        print()
    return 0
