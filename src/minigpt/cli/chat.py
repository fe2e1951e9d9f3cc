"""minigpt chat: talk to a chat-tuned model, or let a plain one continue your text."""

from __future__ import annotations

import argparse
import contextlib
import sys

from minigpt.cli.sample import add_sampling_arguments, sample_config_from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "chat",
        help="talk to a chat-tuned model, or let a plain one continue what you type",
        description="Talk to a chat-tuned model (one with a chat template: it answers as the "
        "assistant), or type text for a plain model to continue; the conversation so far "
        "stays in the context. /help lists commands such as /temperature 0.5; Ctrl-D or /quit "
        "exits.",
    )
    add_sampling_arguments(p)
    p.add_argument(
        "--system",
        metavar="TEXT",
        help="system message for a chat-tuned model (one with a chat template)",
    )
    p.add_argument(
        "--no-history",
        dest="history",
        action="store_false",
        help="continue each line on its own, without the conversation so far",
    )
    p.set_defaults(func=run, max_new_tokens=200)


def run(args: argparse.Namespace) -> int:
    from minigpt.inference.chat import chat
    from minigpt.interop.loader import load_model

    config = sample_config_from_args(args)
    model, tokenizer = load_model(args.checkpoint, device=args.device, quantize=args.quantize)
    if sys.stdin.isatty():
        with contextlib.suppress(ImportError):  # not on Windows
            import readline  # noqa: F401  (line editing and history for input())
    chat(model, tokenizer, config, history=args.history, system=args.system)
    return 0
