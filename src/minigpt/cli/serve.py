"""minigpt serve: an OpenAI-compatible API and a web app for runs and models (docs/serve.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

from minigpt.cli.common import add_memory_check_argument
from minigpt.cli.sample import add_quantize_argument
from minigpt.errors import MiniGPTError
from minigpt.serve.settings import ServeConfig, api_key_from_env

DEFAULTS = ServeConfig()


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve",
        help="serve models over an OpenAI-compatible API, with a web app",
        description="Serve runs, checkpoints or hf:DIR folders over an OpenAI-compatible HTTP "
        "API (/v1/completions, /v1/chat/completions, streaming), with a web app at / (a "
        "playground, the runs under --runs with their loss curves, a chat view). Concurrent "
        "requests are decoded together (continuous batching). Needs minigpt[serve].",
    )
    p.add_argument(
        "models", nargs="*", metavar="MODEL", help="RUN, checkpoint, hf:DIR or NAME=PATH"
    )
    p.add_argument("--host", default=DEFAULTS.host, help="address to listen on (%(default)s)")
    p.add_argument("--port", type=int, default=DEFAULTS.port, help="port (%(default)s)")
    p.add_argument(
        "--api-key",
        default=None,
        help="require 'Authorization: Bearer KEY' (default: $MINIGPT_API_KEY; none: open)",
    )
    p.add_argument("--runs", default="runs", help="runs folder for the dashboard (%(default)s)")
    p.add_argument("--no-runs", action="store_true", help="show no runs")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    add_quantize_argument(p)
    limits = p.add_argument_group("limits")
    for name, text in [
        ("max_batch", "sequences decoded together per model"),
        ("max_queue", "requests waiting for a slot before 429"),
        ("max_body_bytes", "largest request body (413 past it)"),
        ("max_prompt_tokens", "longest prompt in tokens"),
        ("max_tokens", "largest max_tokens a request may ask for"),
        ("max_n", "most choices per request"),
    ]:
        flag = "--" + name.replace("_", "-")
        limits.add_argument(
            flag, type=int, default=getattr(DEFAULTS, name), help=f"{text} (%(default)s)"
        )
    add_memory_check_argument(p)
    p.add_argument("--log-level", default="warning", help="uvicorn's log level (%(default)s)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        from minigpt.serve.server import serve
    except ImportError as e:
        raise MiniGPTError(
            f"minigpt serve needs its extra: pip install 'minigpt[serve]' ({e})"
        ) from None
    config = ServeConfig(
        host=args.host,
        port=args.port,
        api_key=api_key_from_env(args.api_key),
        runs=None if args.no_runs else Path(args.runs),
        device=args.device,
        quantize=args.quantize,
        max_batch=args.max_batch,
        max_queue=args.max_queue,
        max_body_bytes=args.max_body_bytes,
        max_prompt_tokens=args.max_prompt_tokens,
        max_tokens=args.max_tokens,
        max_n=args.max_n,
    )
    serve(args.models, config, log_level=args.log_level)
    return 0
