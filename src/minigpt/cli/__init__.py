"""The ``minigpt`` command: one subcommand per pipeline stage, each in its own module.

Each module exposes ``register(subparsers)``, which adds its parser and sets ``func``, the
function that runs it. ``main`` turns every ``MiniGPTError`` into one line on stderr and a
non-zero exit code; a traceback means a bug in minigpt.

Start-up is kept cheap: the command modules import only torch-free code at their top (the
parsers need option names and defaults, not stages), and each ``run`` imports its stages when
it runs. So ``--help``, argument errors and the torch-free commands (``prepare``,
``tokenizer``: ``set_defaults(needs_torch=False)``) never import torch, which takes seconds;
the others check the torch floor first (``check_torch``), then import it as they start.
"""

from __future__ import annotations

import argparse
import os
import sys

from minigpt.cli import (
    chat,
    demo,
    evaluate,
    export,
    params,
    plan,
    prepare,
    sample,
    serve,
    sweep,
    tokenizer,
    train,
)
from minigpt.cli.common import Parser, check_torch
from minigpt.errors import MiniGPTError
from minigpt.hostmem import NO_CHECK_ENV

COMMANDS = [
    demo,
    prepare,
    train,
    sample,
    evaluate,
    chat,
    serve,
    export,
    sweep,
    params,
    plan,
    tokenizer,
]


class VersionAction(argparse.Action):
    """``--version``: the environment report, computed only when asked (it probes devices)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
        # No floor check: the report is what a bug report about an old torch needs.
        from minigpt.runtime import environment_report

        print("\n".join(environment_report()))
        parser.exit()


def build_parser() -> Parser:
    parser = Parser(
        prog="minigpt",
        description="Train a GPT language model from scratch on your own text.",
    )
    parser.add_argument(
        "--version",
        action=VersionAction,
        help="print minigpt's, Python's and torch's versions and the devices (for bug reports)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    subparsers.required = True
    for command in COMMANDS:
        command.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "no_memory_check", False):  # reaches every stage, and torchrun's ranks
        os.environ[NO_CHECK_ENV] = "1"
    try:
        if getattr(args, "needs_torch", True):
            check_torch()
        return args.func(args) or 0
    except MiniGPTError as e:
        print(f"minigpt {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"minigpt {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
