"""CPU training throughput of the cpu-demo and shakespeare-char presets, eager vs compiled.

    PYTHONPATH=src python benchmarks/train_speed.py [--rounds 3] [--write]

Both variants are built side by side and timed in alternating rounds (the machine is shared
and noisy), on Tiny Shakespeare. The first steps, which include torch.compile's compilation,
are timed separately as the warm-up. ``--write`` updates the issue-3 section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import platform
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from minigpt.config import load_config
from minigpt.data.prepare import prepare_dataset
from minigpt.training.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]
TEXT = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"
STEPS = {"cpu-demo": 10, "shakespeare-char": 1}  # timed steps per round
MARK_START, MARK_END = "<!-- issue-3:train-speed:start -->", "<!-- issue-3:train-speed:end -->"


def make_trainer(preset: str, data: Path, out: Path, compile_: bool) -> Trainer:
    config = load_config(
        preset,
        overrides={
            "data": str(data),
            "out_dir": str(out / f"{preset}-{compile_}"),
            "device": "cpu",
            "compile": str(compile_).lower(),
        },
    )
    return Trainer(config, force=True, watch=False)


def bench(preset: str, data: Path, out: Path, rounds: int) -> list[dict]:
    trainers = {c: make_trainer(preset, data, out, c) for c in (False, True)}
    warmup, times = {}, {c: [] for c in trainers}
    for c, t in trainers.items():
        start = time.perf_counter()
        for _ in range(2):
            t.train_step()
        warmup[c] = time.perf_counter() - start
    for _ in range(rounds):
        for c, t in trainers.items():
            start = time.perf_counter()
            for _ in range(STEPS[preset]):
                t.train_step()
            times[c].append((time.perf_counter() - start) / STEPS[preset])
    rows = []
    for c, t in trainers.items():
        step_s = statistics.median(times[c])
        rows.append(
            {
                "preset": preset,
                "compile": c,
                "compiled": t.forward_model is not t.model,
                "warmup_s": warmup[c],
                "tok_s": t.tokens_per_step / step_s,
                "ms_per_step": 1000 * step_s,
            }
        )
    rows[1]["ratio"] = rows[1]["tok_s"] / rows[0]["tok_s"]
    return rows


def table(rows: list[dict]) -> str:
    lines = [
        "| preset | compile | tokens/s | ms/step | first 2 steps (s) | compiled / eager |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        ratio = f"{r['ratio']:.3f}" if "ratio" in r else ""
        mode = "yes" if r["compiled"] else ("no" if not r["compile"] else "fell back")
        lines.append(
            f"| {r['preset']} | {mode} | {r['tok_s']:,.0f} | {r['ms_per_step']:.0f} "
            f"| {r['warmup_s']:.1f} | {ratio} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--presets", nargs="+", default=list(STEPS))
    parser.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    args = parser.parse_args()
    if not TEXT.is_file():
        sys.exit(f"Tiny Shakespeare not found at {TEXT}")
    with tempfile.TemporaryDirectory() as tmp:
        data = prepare_dataset([TEXT], Path(tmp) / "data", quiet=True)
        rows = [r for p in args.presets for r in bench(p, data, Path(tmp), args.rounds)]
    result = table(rows)
    env = (
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{platform.processor() or platform.machine()}, {time.strftime('%Y-%m-%d')}; "
        f"median of {args.rounds} alternating rounds "
        f"({', '.join(f'{p}: {n} steps' for p, n in STEPS.items())})"
    )
    print(result)
    print(env)
    if args.write:
        write(f"{result}\n\n{env}")


def write(body: str) -> None:
    path = ROOT / "BENCHMARKS.md"
    text = path.read_text(encoding="utf-8") if path.is_file() else "# Benchmarks\n"
    block = f"{MARK_START}\n{body}\n{MARK_END}"
    if MARK_START in text:
        text = re.sub(
            re.escape(MARK_START) + ".*?" + re.escape(MARK_END), lambda m: block, text, flags=re.S
        )
    else:
        text += f"\n## Training speed on CPU (issue 3)\n\n{block}\n"
    path.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
