"""Whole-process time to the classic CPU result: ``minigpt train --preset cpu-fast`` against the
classic recipe, as a user waits for them (start-up, evaluations and all).

    PYTHONPATH=src python benchmarks/time_to_quality.py --data DATASET [--pairs 3] [--threads N]

DATASET is Tiny Shakespeare prepared with ``minigpt prepare`` (char level, the last 10% as val).
Each pair runs, one after the other, two whole ``python -m minigpt train`` processes:

- ``classic``: nanoGPT's CPU command (4 layers, 4 heads, 128 wide, block 64, batch 12, AdamW
  1e-3 cosine over 2000 steps, dropout 0, nanoGPT's exact GELU; evaluation every 250 steps on
  20 batches), whose
  final val loss is the target (1.8857 in nanoGPT's README);
- ``cpu-fast``: the preset as it ships.

The clock starts when the process is launched and stops at the first evaluation line whose val
loss is at or below ``--target`` (and at the process's exit, for the total). Pairs alternate so
load from other jobs falls on both; reported are the medians and their ratio. The process's CPU
time (user + system, from ``/proc``) is read at the same moments: with ``--threads 1`` on a
shared machine it counts the work done, not the waiting for a core, and is the steadier ratio.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from recipe_race import CLASSIC
from record import machine_description, update_section

TARGET = 1.8857
EVAL_LINE = re.compile(r"^eval\s+(\d+) \| train [\d.]+ \| val ([\d.]+)")
NANOGPT_EVALS = dict(eval_interval=250, eval_iters=20, log_interval=250, checkpoint_interval=2000)
NANOGPT_MLP = dict(mlp="gelu_exact")  # nn.GELU() in nanoGPT's model.py


def flags(values: dict) -> list[str]:
    return [a for k, v in values.items() for a in (f"--{k.replace('_', '-')}", str(v))]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process so far (Linux ``/proc``; nan elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    """User + system CPU time of this process's finished (waited-for) children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(name: str, args: list[str], target: float, env: dict) -> dict:
    """One whole training process: seconds to the target and in all (wall and CPU time), and
    the final val loss."""
    start, before = time.perf_counter(), children_cpu_seconds()
    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "minigpt", "train", *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip
    reached, val, step, cpu_reached = None, None, None, None
    for line in proc.stdout:
        match = EVAL_LINE.match(line)
        if match:
            step, val = int(match.group(1)), float(match.group(2))
            if reached is None and val <= target:
                reached, cpu_reached = (time.perf_counter() - start, step), cpu_seconds(proc.pid)
    if proc.wait() != 0:
        raise SystemExit(f"{name} failed (exit {proc.returncode})")
    total, cpu_total = time.perf_counter() - start, children_cpu_seconds() - before
    result = dict(
        total=total, reached=reached, final_val=val, final_step=step,
        cpu_total=cpu_total, cpu_reached=cpu_reached,
    )  # fmt: skip
    print(f"{name}: {result}", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--target", type=float, default=TARGET)
    parser.add_argument("--threads", type=int, default=0, help="OMP_NUM_THREADS for both")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    env = dict(os.environ)
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    results: dict[str, list[dict]] = {"classic": [], "cpu-fast": []}
    with tempfile.TemporaryDirectory() as tmp:
        common = ["--data", args.data, "--force", "--device", "cpu"]
        commands = {
            "classic": [
                *common,
                "--out-dir",
                f"{tmp}/classic",
                *flags({**CLASSIC, **NANOGPT_EVALS, **NANOGPT_MLP}),
            ],
            "cpu-fast": [*common, "--out-dir", f"{tmp}/cpu-fast", "--preset", "cpu-fast"],
        }
        for _ in range(args.pairs):
            for name, command in commands.items():
                results[name].append(run(name, command, args.target, env))
    classic_total = statistics.median(r["total"] for r in results["classic"])
    classic_cpu = statistics.median(r["cpu_total"] for r in results["classic"])
    rows = []
    for name, runs in results.items():
        times = [r["reached"][0] for r in runs if r["reached"]]
        to_target = statistics.median(times) if len(times) == len(runs) else float("nan")
        cpu = [r["cpu_reached"] for r in runs if r["reached"]]
        cpu_to_target = statistics.median(cpu) if len(cpu) == len(runs) else float("nan")
        steps = sorted({r["reached"][1] for r in runs if r["reached"]})
        reached = f"{to_target:.1f} s (step {', '.join(map(str, steps))})" if steps else "-"
        ratio = f"{to_target / classic_total:.2f}x" if steps else "-"
        cpu_ratio = f"{cpu_to_target / classic_cpu:.2f}x" if steps else "-"
        cpu_reached = f"{cpu_to_target:.1f} s" if steps else "-"
        rows.append(
            f"| {name} | {statistics.median(r['total'] for r in runs):.1f} s | {reached} | "
            f"{ratio} | {statistics.median(r['cpu_total'] for r in runs):.1f} s | "
            f"{cpu_reached} | {cpu_ratio} | {statistics.median(r['final_val'] for r in runs):.4f} |"
        )
    threads = f" --threads {args.threads}" if args.threads else ""
    text = "\n".join(
        [
            "## Time to the classic result, whole processes (issue 17)",
            "",
            f"Machine: {machine_description()} (this process; the runs: {args.threads or 'default'} "
            "threads). Command: `PYTHONPATH=src python "
            f"benchmarks/time_to_quality.py --data DATASET --pairs {args.pairs}{threads}`. "
            f"Target: val loss {args.target} (the first evaluation at or below it).",
            "",
            "| recipe | whole process | to the target | vs classic whole process "
            "| CPU time, whole process | CPU time to the target | vs classic (CPU) | final val |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
            *rows,
        ]
    )
    print(text)
    if not args.no_record:
        update_section("time-to-quality", text)


if __name__ == "__main__":
    main()
