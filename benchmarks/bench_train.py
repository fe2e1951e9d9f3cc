"""Training speed on this machine: minigpt's trainer against a plain PyTorch reference step.

For each shape that fits the machine it times minigpt's full optimizer step (batch read from the
memory-mapped dataset, forward, backward, clipping, AdamW) and, in the same run, the classic
reference step from ``../shared/bench/reference_step.py`` on the same shape; absolute times on
shared machines are noisy, the ratio is not. With ``--demo`` it also runs ``minigpt demo`` and
records its wall time and final val loss. Results go to the ``train`` section of BENCHMARKS.md.

    python benchmarks/bench_train.py [--demo] [--steps 30]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from minigpt.config import load_config
from minigpt.data.prepare import prepare_dataset
from minigpt.demo import builtin_corpus, run_demo
from minigpt.training.trainer import Trainer
from record import machine_description, update_section

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT.parent / "shared" / "bench" / "reference_step.py"
SHAKESPEARE = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"

SHAPES = {
    "classic CPU recipe": dict(n_layer=4, n_head=4, n_embd=128, block_size=64, batch_size=12),
    "cpu-demo": dict(preset="cpu-demo"),
    "shakespeare-char": dict(preset="shakespeare-char"),
}


def time_minigpt(dataset: Path, out: Path, shape: dict, steps: int, warmup: int) -> tuple:
    overrides = {k: v for k, v in shape.items() if k != "preset"}
    overrides.update(data=str(dataset), out_dir=str(out), device="cpu", dropout=0.0)
    config = load_config(preset=shape.get("preset"), overrides=overrides)
    trainer = Trainer(config, force=True)
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        trainer.train_step()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    ms = statistics.median(times) * 1000
    tokens = config.train.batch_size * config.train.grad_accum * config.model.block_size
    return config, ms, tokens / (ms / 1000)


def time_reference(config, steps: int, warmup: int) -> float | None:
    if not REFERENCE.is_file():
        return None
    m = config.model
    args = [
        "--vocab-size", m.vocab_size, "--block-size", m.block_size, "--n-layer", m.n_layer,
        "--n-head", m.n_head, "--n-embd", m.n_embd, "--batch-size", config.train.batch_size,
        "--steps", steps, "--warmup", warmup,
    ]  # fmt: skip
    out = subprocess.run(
        [sys.executable, str(REFERENCE), *map(str, args)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return float(out.split(":", 1)[1].split("ms/iter")[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="timed steps per shape")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--demo", action="store_true", help="also time `minigpt demo`")
    parser.add_argument("--no-record", action="store_true", help="print only")
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        corpus = SHAKESPEARE if SHAKESPEARE.is_file() else Path(tmp) / "corpus.txt"
        if corpus != SHAKESPEARE:
            corpus.write_text(builtin_corpus(), encoding="utf-8")
        dataset = prepare_dataset([corpus], Path(tmp) / "ds", quiet=True)
        for name, shape in SHAPES.items():
            config, ms, tok_s = time_minigpt(
                dataset, Path(tmp) / "run", shape, args.steps, args.warmup
            )
            ref_ms = time_reference(config, args.steps, args.warmup)
            m, t = config.model, config.train
            shape_text = f"L{m.n_layer} H{m.n_head} D{m.n_embd} T{m.block_size} B{t.batch_size}"
            ratio = f"{ref_ms / ms:.2f}x" if ref_ms else "n/a"
            ref_text = f"{ref_ms:.1f}" if ref_ms else "n/a"
            rows.append(
                f"| {name} | {shape_text} | {ms:.1f} | {tok_s:,.0f} | {ref_text} | {ratio} |"
            )
            print(rows[-1], flush=True)
        demo_text = ""
        if args.demo:
            result = run_demo(out_dir=Path(tmp) / "demo", samples=1, sample_tokens=200)
            demo_text = (
                f"\n`minigpt demo` (cpu-demo preset on Python's help topics): "
                f"{result['seconds']:.0f} s wall time in all ({result['train_seconds']:.0f} s "
                f"training), {result['tokens_per_second']:,.0f} tokens/s, "
                f"final val loss {result['val_loss']:.3f}.\n"
            )
    table = "\n".join(
        [
            "## Training speed on CPU (issue 2)",
            "",
            f"Machine: {machine_description()}. Command: `python benchmarks/bench_train.py"
            f"{' --demo' if args.demo else ''}`.",
            "Median of the timed optimizer steps (fp32, no compile). *reference* is "
            "`shared/bench/reference_step.py` on the same shape in the same run; "
            "speed-up = reference ms / minigpt ms (above 1 means minigpt is faster).",
            "",
            "| shape | config | minigpt ms/iter | minigpt tokens/s | reference ms/iter | speed-up |",
            "| --- | --- | --- | --- | --- | --- |",
            *rows,
            demo_text,
        ]
    )
    print(table)
    if not args.no_record:
        update_section("train", table)


if __name__ == "__main__":
    main()
