"""minigpt sweep: hyperparameter search (grid, random, TPE) over real training runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from minigpt.cli.common import add_config_arguments, config_overrides
from minigpt.errors import MiniGPTError
from minigpt.sweep.space import PRUNERS, SAMPLERS


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "sweep",
        help="search hyperparameters: many short training runs, best first",
        description="Train one short run per trial over a search space (see docs/sweep.md) "
        "and report the best. Running the same command again resumes the study.",
    )
    p.add_argument("--space", required=True, metavar="SPACE.toml", help="the search space")
    p.add_argument(
        "--base",
        metavar="PRESET|CONFIG",
        help="config every trial starts from: a preset name or a TOML file "
        "(same as --preset / --config; config flags below go on top)",
    )
    p.add_argument(
        "--budget",
        required=True,
        metavar="ITERS|TIME",
        help="training per trial: iterations (300) or wall-clock time (5m, 90s, 1h)",
    )
    p.add_argument(
        "--trials", type=int, help="trials in the study (default: the whole grid, or 20)"
    )
    p.add_argument("--sampler", choices=SAMPLERS, default="tpe", help="default: tpe")
    p.add_argument("--pruner", choices=PRUNERS, default="median", help="default: median")
    p.add_argument("--out", help="sweep folder (default: sweeps/<space file name>)")
    p.add_argument(
        "--storage",
        metavar="URL",
        help="study database (default: sqlite in --out); e.g. postgresql://user@host/db "
        "to share one study between machines",
    )
    p.add_argument("--study-name", help="study name in the database (default: --out's name)")
    p.add_argument("--sampler-seed", type=int, default=0, help="sampler seed (default: 0)")
    add_config_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        from minigpt.config import load_config
        from minigpt.sweep.runner import resolve_base, run_sweep
    except ImportError as e:
        raise MiniGPTError(
            f"minigpt sweep needs optuna ({e}); pip install 'minigpt[sweep]'"
        ) from None
    if args.base and (args.preset or args.config):
        raise MiniGPTError("give the base config once: --base, or --preset/--config")
    overrides = config_overrides(args)
    for name, instead in (("out_dir", "--out for the sweep folder"), ("max_minutes", "--budget")):
        if name in overrides:
            raise MiniGPTError(f"--{name.replace('_', '-')} is set per trial; use {instead}")
    if args.base:
        base = resolve_base(args.base, overrides)
    else:
        base = load_config(args.preset, args.config, overrides)
    run_sweep(
        args.space,
        base,
        budget=args.budget,
        trials=args.trials,
        sampler=args.sampler,
        pruner=args.pruner,
        out_dir=args.out or Path("sweeps") / Path(args.space).stem,
        storage=args.storage,
        study_name=args.study_name,
        seed=args.sampler_seed,
        overrides=overrides,  # flags win over the space's [fixed]
    )
    return 0
