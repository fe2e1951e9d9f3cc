"""minigpt params: the exact parameter count of a config, part by part."""

from __future__ import annotations

import argparse

from minigpt.cli.common import add_config_arguments, config_from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "params",
        help="count a model's parameters, part by part",
        description="Print the parameter breakdown of a config (embeddings, each block's "
        "c_attn, c_proj, c_fc, c_proj and LayerNorms, ln_f, lm_head), totals tied/untied "
        "and with/without position embeddings, FLOPs per token, and the difference from "
        "GPT-2 small's published 124,439,808. Every number equals sum(p.numel()) of the model.",
    )
    add_config_arguments(p)
    p.add_argument(
        "--course", action="store_true", help="also explain the course's totals for 12 x 768"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from minigpt.model.sizing import format_breakdown, format_course_figures, sized_model_config

    config = config_from_args(args)
    print(format_breakdown(sized_model_config(config)))
    if args.course:
        print()
        print(format_course_figures())
    return 0
