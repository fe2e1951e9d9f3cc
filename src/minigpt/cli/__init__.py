"""The ``minigpt`` command: one subcommand per pipeline stage, each in its own module.

Each module exposes ``register(subparsers)``, which adds its parser and sets ``func``, the
function that runs it. ``main`` turns every ``MiniGPTError`` into one line on stderr and a
non-zero exit code; a traceback means a bug in minigpt.
"""

from __future__ import annotations

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
from minigpt.cli.common import Parser
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


def build_parser() -> Parser:
    from minigpt._version import __version__

    parser = Parser(
        prog="minigpt",
        description="Train a GPT language model from scratch on your own text.",
    )
    parser.add_argument("--version", action="version", version=f"minigpt {__version__}")
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
        return args.func(args) or 0
    except MiniGPTError as e:
        print(f"minigpt {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"minigpt {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
