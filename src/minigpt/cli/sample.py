"""minigpt sample: generate text from a checkpoint, streamed to the terminal."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import typing

from minigpt.cli.common import add_memory_check_argument, field_argument
from minigpt.config.sampling import QUANTIZE_CHOICES, SampleConfig

# One-letter forms of the flags used most.
SHORT_FLAGS = {"max_new_tokens": ("-m",), "num_samples": ("-n",)}


def add_sampling_arguments(parser: argparse.ArgumentParser) -> None:
    """The checkpoint, device and one flag per SampleConfig field (shared with `minigpt chat`;
    `num_samples` is `minigpt sample`'s own). Type, default and help come from the field."""
    parser.add_argument(
        "checkpoint", help="run folder (newest good checkpoint) or checkpoint folder"
    )
    group = parser.add_argument_group("sampling")
    hints = typing.get_type_hints(SampleConfig)
    for field in dataclasses.fields(SampleConfig):
        if field.name == "stop":  # many strings, each given once
            group.add_argument(
                "--stop",
                action="append",
                default=list(field.default),
                metavar="TEXT",
                help="end a sample where TEXT appears (repeatable; \\n and \\t are understood)",
            )
        elif field.name == "use_cache":  # on by default: the flag turns it off
            group.add_argument(
                "--no-cache",
                dest="use_cache",
                action="store_false",
                default=field.default,
                help="recompute the whole context every token (slow; for comparison)",
            )
        elif field.name != "num_samples":
            field_argument(group, field, hints[field.name], *SHORT_FLAGS.get(field.name, ()))
        if field.name == "seed":  # seed none, as a flag
            group.add_argument(
                "--random", action="store_true", help="no fixed seed: new samples every run"
            )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    add_quantize_argument(parser)
    add_memory_check_argument(parser)


def add_quantize_argument(parser: argparse.ArgumentParser) -> None:
    """--quantize, shared by sample, chat and eval."""
    parser.add_argument(
        "--quantize",
        default="none",
        choices=QUANTIZE_CHOICES,
        help="int8: int8 weights (per-channel scales), activations unrounded, closest to fp32; int4: 4-bit weights in groups of 32, faster; int8-dynamic: activations quantized too, less exact (all run on the CPU) (%(default)s)",
    )


def sample_config_from_args(args: argparse.Namespace) -> SampleConfig:
    """The SampleConfig of the flags given (fields without a flag keep their defaults)."""
    from minigpt.inference.generate import unescape

    given = vars(args)
    values = {f.name: given[f.name] for f in dataclasses.fields(SampleConfig) if f.name in given}
    values["stop"] = tuple(unescape(s) for s in values["stop"])
    if args.random:
        values["seed"] = None
    config = SampleConfig(**values)
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
    num_samples = next(f for f in dataclasses.fields(SampleConfig) if f.name == "num_samples")
    field_argument(p, num_samples, int, *SHORT_FLAGS["num_samples"])
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from minigpt.inference.generate import generate_samples, stream_text
    from minigpt.interop.loader import load_model

    config = sample_config_from_args(args)
    model, tokenizer = load_model(args.checkpoint, device=args.device, quantize=args.quantize)
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
