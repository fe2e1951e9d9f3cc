"""Data-parallel training on CPU: 1 process vs 2 DDP ranks vs 2 FSDP ranks, same global batch.

    PYTHONPATH=src python benchmarks/distributed_cpu.py [--steps 100] [--data DATASET]

Trains the cpu-demo model shape on Tiny Shakespeare three ways, one after the other in this
one run, each on 32 sequences of 64 tokens per step: one process with grad_accum 2 (using all
cores, then on one thread), and `minigpt train --nproc 2` with grad_accum 1 (one thread per
rank), with DDP and with FSDP. Prints the
training throughput (as `minigpt train` reports it) and the final loss of each; the losses
agree because the runs train on the same batches. On a CPU, data parallelism only pays where
one process cannot use all the cores; the point of the CPU numbers is the overhead of the
gloo collectives, which the GPU path (NCCL) shares in kind, not in size.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHAKESPEARE = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"


def run(label: str, data: Path, out: Path, steps: int, extra: list[str], threads: str = "") -> dict:
    cmd = [
        sys.executable, "-m", "minigpt", "train", "--preset", "cpu-demo",
        "--data", str(data), "--out-dir", str(out), "--max-iters", str(steps),
        "--batch-size", "16", "--eval-interval", str(steps), "--eval-iters", "4",
        "--log-interval", str(steps), "--checkpoint-interval", str(steps), "--device", "cpu",
        *extra,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    if threads:
        env["OMP_NUM_THREADS"] = threads
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise SystemExit(f"{label} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    done = re.search(r"val loss ([\d.]+).*?([\d,]+) tok/s", proc.stdout.splitlines()[-1])
    assert done, proc.stdout[-500:]
    return {"label": label, "val": float(done[1]), "tok_s": float(done[2].replace(",", ""))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--data", type=Path, help="a prepared dataset (default: Tiny Shakespeare)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if data is None:
            data = Path(tmp) / "ds"
            subprocess.run(
                [sys.executable, "-m", "minigpt", "prepare", str(SHAKESPEARE), "--out", str(data)],
                env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
                check=True,
                capture_output=True,
            )
        rows = [
            run("1 process, grad_accum 2", data, Path(tmp) / "a", args.steps, ["--grad-accum", "2"]),
            run("1 process, grad_accum 2, 1 thread", data, Path(tmp) / "a1", args.steps,
                ["--grad-accum", "2"], threads="1"),
            run("2 ranks DDP (gloo)", data, Path(tmp) / "b", args.steps, ["--nproc", "2"]),
            run("2 ranks FSDP (gloo)", data, Path(tmp) / "c", args.steps, ["--nproc", "2", "--fsdp"]),
        ]  # fmt: skip
    base = rows[0]["tok_s"]
    print(f"{args.steps} steps of 32 x 64 tokens, cpu-demo model, {os.cpu_count()} cores")
    print("| run | tokens/s | vs. 1 process | val loss |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['label']} | {r['tok_s']:,.0f} | {r['tok_s'] / base:.2f}x | {r['val']:.4f} |")


if __name__ == "__main__":
    main()
