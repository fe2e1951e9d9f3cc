"""minigpt train: train a model on a prepared dataset."""

from __future__ import annotations

import argparse
from pathlib import Path

from minigpt.cli.common import add_config_arguments, add_memory_check_argument, config_overrides
from minigpt.config import load_config
from minigpt.training.trackers import TRACKERS, make_trackers


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a model on a prepared dataset",
        description="Train a GPT. Config layers: defaults < --preset < --config < flags.",
    )
    add_config_arguments(p)
    p.add_argument("--resume", action="store_true", help="continue the run in --out-dir")
    p.add_argument("--force", action="store_true", help="start over in a folder that holds a run")
    p.add_argument(
        "--init-from",
        metavar="CKPT",
        help="start from another run's weights, or from a Hugging Face GPT-2 folder: hf:DIR",
    )
    add_memory_check_argument(p)
    p.add_argument("--progress", action="store_true", help="show a progress bar")
    p.add_argument(
        "--log-to",
        action="append",
        default=[],
        choices=TRACKERS,
        metavar="TRACKER",
        help="also send metrics, config and samples to wandb, trackio or mlflow "
        "(repeatable; each needs its extra, e.g. pip install 'minigpt[wandb]')",
    )
    p.add_argument(
        "--nproc",
        type=int,
        metavar="N",
        help="train on N processes of this machine (one per GPU, or CPU processes): "
        "starts torchrun; see docs/distributed.md",
    )
    p.set_defaults(func=run)


def worker_argv(args: argparse.Namespace) -> list[str]:
    """This command line again, without --nproc: what each rank runs."""
    argv = ["train"]
    for name, value in config_overrides(args).items():
        argv += ["--" + name.replace("_", "-"), str(value)]
    for option in ("preset", "config", "init_from"):
        if getattr(args, option):
            argv += ["--" + option.replace("_", "-"), str(getattr(args, option))]
    argv += [f"--{flag}" for flag in ("resume", "force", "progress") if getattr(args, flag)]
    for tracker in args.log_to:
        argv += ["--log-to", tracker]
    return argv


def run(args: argparse.Namespace) -> int:
    from minigpt.runtime import resolve_device
    from minigpt.training.distributed import is_main_process
    from minigpt.training.launch import launch
    from minigpt.training.trainer import CONFIG_FILE, TrainingInterrupted, train

    if args.nproc is not None and args.nproc != 1:
        # Bad input fails here, once, rather than on every rank.
        config = load_config(args.preset, args.config, config_overrides(args))
        make_trackers(args.log_to)  # a tracker that is not installed: one line, here
        return launch(args.nproc, worker_argv(args), resolve_device(config.train.device))
    overrides = config_overrides(args)
    config_file = args.config
    if args.resume and not config_file and not args.preset:
        # Resuming without a config continues the run as it was saved.
        saved = Path(overrides.get("out_dir", "runs/default")) / CONFIG_FILE
        config_file = saved if saved.is_file() else None
    config = load_config(args.preset, config_file, overrides)
    trackers = make_trackers(args.log_to)
    try:
        result = train(
            config,
            resume=args.resume,
            force=args.force,
            init_from=args.init_from,
            progress=args.progress,
            callbacks=trackers,
        )
    except TrainingInterrupted as e:
        return 128 + e.signum  # the shell convention: 130 for Ctrl-C, 143 for SIGTERM
    if not is_main_process():  # under torchrun, rank 0 reports for all
        return 0
    print(
        f"done: {result.iterations} iterations, val loss {result.val_loss:.4f} "
        f"(best {result.best_val_loss:.4f}), {result.tokens_per_second:,.0f} tok/s -> {result.run_dir}"
    )
    return 0
