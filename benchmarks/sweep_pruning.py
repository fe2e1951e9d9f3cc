"""What pruning saves: the same random study with and without the median pruner.

The random sampler draws the same points whatever happens to earlier trials, so both studies
train exactly the same configurations; the only difference is that the pruned one stops bad
trials at an evaluation. Printed: steps trained, wall time, and the best val loss each found.

    PYTHONPATH=src python benchmarks/sweep_pruning.py [--text FILE] [--trials 12] [--budget 150]

Steps trained is the machine-independent cost; wall time is measured side by side in one run.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import tempfile
import time
from pathlib import Path

import torch

from minigpt.config import load_config
from minigpt.data.prepare import prepare_dataset
from minigpt.sweep.runner import run_sweep
from minigpt.sweep.space import parse_space

SPACE = {
    "params": {
        "lr": {"low": 1e-5, "high": 3e-2, "log": True},
        "n_layer": [1, 2],
        "n_embd": [32, 64],
    },
    "fixed": {"eval_interval": 25, "eval_iters": 5, "warmup_iters": 10},
}
BASE = dict(n_head=2, block_size=64, batch_size=16, device="cpu", checkpoint_interval=10_000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text", default="../shared/data/tinyshakespeare.txt")
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--budget", type=int, default=150)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    space = parse_space(SPACE)
    with tempfile.TemporaryDirectory() as tmp:
        with contextlib.redirect_stdout(io.StringIO()):
            data = prepare_dataset([args.text], Path(tmp) / "data", quiet=True)
        base = load_config(overrides={**BASE, "data": str(data)})
        results = {}
        for pruner in ("none", "median"):
            start = time.time()
            report = run_sweep(
                space,
                base,
                budget=args.budget,
                trials=args.trials,
                sampler="random",
                pruner=pruner,
                out_dir=Path(tmp) / pruner,
                quiet=True,
            )
            seconds = time.time() - start
            steps = sum(r.iters or 0 for r in report.rows)
            pruned = sum(r.status == "pruned" for r in report.rows)
            best = report.best.val_loss if report.best else float("nan")
            results[pruner] = (steps, seconds, pruned, best)
    full_steps, full_seconds = results["none"][:2]
    print(f"{args.trials} random trials of {args.budget} steps, same points in both studies")
    print("| pruner | trials pruned | steps trained | wall time | vs. no pruning | best val loss |")
    print("|---|---|---|---|---|---|")
    for pruner, (steps, seconds, pruned, best) in results.items():
        ratio = f"{steps / full_steps:.2f}x steps, {seconds / full_seconds:.2f}x time"
        print(f"| {pruner} | {pruned} | {steps} | {seconds:.1f} s | {ratio} | {best:.4f} |")


if __name__ == "__main__":
    main()
