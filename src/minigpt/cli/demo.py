"""minigpt demo: prepare a corpus, train cpu-demo, print samples."""

from __future__ import annotations

import argparse

from minigpt.errors import MiniGPTError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo",
        help="the whole pipeline on a built-in corpus, in a few minutes on a CPU",
        description="Prepare a corpus (Python's help topics, or --data FILE), train the "
        "cpu-demo preset and print samples. Needs no network.",
    )
    p.add_argument("--data", metavar="FILE", help="your own text file instead of the built-in one")
    p.add_argument("--out", default="runs/demo", help="folder for the dataset and run")
    p.add_argument(
        "--max-iters",
        type=int,
        help="training steps (default: the preset's; with --chat, the tuning steps: 600)",
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    p.add_argument(
        "--chat",
        action="store_true",
        help="go on to fine-tuning: tune the demo model on questions about the help topics "
        "and print two conversations with it (--out default: runs/demo-chat)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from minigpt.demo import run_chat_demo, run_demo

    if args.chat:
        if args.data:
            raise MiniGPTError("--chat uses the built-in help topics; leave out --data")
        out = args.out if args.out != "runs/demo" else "runs/demo-chat"
        tune = {"tune_iters": args.max_iters} if args.max_iters else {}
        run_chat_demo(out_dir=out, device=args.device, **tune)
        return 0
    run_demo(data=args.data, out_dir=args.out, max_iters=args.max_iters, device=args.device)
    return 0
