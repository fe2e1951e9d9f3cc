"""minigpt sample: generate text from a checkpoint, streamed to the terminal."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from minigpt.config.sampling import SampleConfig
from minigpt.inference.generate import generate_samples, stream_text, unescape
from minigpt.interop.loader import load_model


def _help(name: str) -> str:
    field = next(f for f in dataclasses.fields(SampleConfig) if f.name == name)
    return f"{field.metadata['help']} (%(default)s)"


def add_sampling_arguments(parser: argparse.ArgumentParser) -> None:
    """The checkpoint, device and every SampleConfig control (shared with `minigpt chat`)."""
    parser.add_argument(
        "checkpoint", help="run folder (newest good checkpoint) or checkpoint folder"
    )
    p = parser.add_argument_group("sampling")
    p.add_argument("-m", "--max-new-tokens", type=int, default=500, help=_help("max_new_tokens"))
    p.add_argument("--temperature", type=float, default=0.8, help=_help("temperature"))
    p.add_argument("--top-k", type=int, default=200, help=_help("top_k"))
    p.add_argument("--top-p", type=float, default=1.0, help=_help("top_p"))
    p.add_argument("--min-p", type=float, default=0.0, help=_help("min_p"))
    p.add_argument(
        "--repetition-penalty", type=float, default=1.0, help=_help("repetition_penalty")
    )
    p.add_argument(
        "--stop",
        action="append",
        default=[],
        metavar="TEXT",
        help="end a sample where TEXT appears (repeatable; \\n and \\t are understood)",
    )
    p.add_argument("--seed", type=int, default=1337, help=_help("seed"))
    p.add_argument("--random", action="store_true", help="no fixed seed: new samples every run")
    p.add_argument(
        "--no-cache",
        dest="use_cache",
        action="store_false",
        help="recompute the whole context every token (slow; for comparison)",
    )
    p.add_argument("--context-shift", type=int, default=1, help=_help("context_shift"))
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")


def sample_config_from_args(args: argparse.Namespace, **extra: object) -> SampleConfig:
    config = SampleConfig(
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        min_p=args.min_p,
        repetition_penalty=args.repetition_penalty,
        stop=tuple(unescape(s) for s in args.stop),
        seed=None if args.random else args.seed,
        use_cache=args.use_cache,
        context_shift=args.context_shift,
        **extra,
    )
    config.validate()
    return config


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "sample",
        help="generate text from a trained model",
        description="Generate samples from a run folder or checkpoint folder. One sample is "
        "streamed as it is written; several are generated together as one batch.",
    )
    add_sampling_arguments(p)
    p.add_argument("--prompt", default="", help="text to continue (default: start fresh)")
    p.add_argument("-n", "--num-samples", type=int, default=1, help=_help("num_samples"))
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = sample_config_from_args(args, num_samples=args.num_samples)
    model, tokenizer = load_model(args.checkpoint, device=args.device)
    prompt = args.prompt
    if config.num_samples == 1:
        sys.stdout.write(prompt)
        for piece in stream_text(model, tokenizer, prompt, config):
            print(piece, end="", flush=True)
        print()
        return 0
    for i, text in enumerate(generate_samples(model, tokenizer, prompt, config)):
        print(f"--- sample {i + 1} ---")
        print(prompt + text)
    return 0
