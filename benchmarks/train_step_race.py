"""minigpt's training step against the classic reference step, side by side in one process.

    PYTHONPATH=src python benchmarks/train_step_race.py [--rounds 7] [--steps 10] [--no-record]

The reference is ``../shared/bench/reference_step.py`` (the plain PyTorch GPT-2 step nanoGPT
runs on a CPU: fp32, eager, AdamW), imported here and driven exactly as its own ``main`` does.
minigpt runs its real ``Trainer.train_step`` (batches from the memory-mapped dataset, clipping,
the loss guard) at the same shape: 4 layers, 4 heads, 128 wide, block 64, batch 12, vocabulary
65 (Tiny Shakespeare's characters). Each variant is built once, warmed up (a compiled one
compiles then, from the persistent cache when it has one), and the variants take turns for
``--rounds`` rounds of ``--steps`` steps, so load from other jobs falls on all alike. The
figure is the ratio of median step times, reference / minigpt (above 1: minigpt is faster).
With ``--threads 1`` every op runs on the calling thread, so its CPU time per step
(``time.thread_time``) is also reported: on a shared machine it counts the work done and not
the time spent waiting for a core, which makes it the steadier of the two ratios.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from minigpt.config import load_config
from minigpt.data.prepare import prepare_dataset
from minigpt.training.trainer import Trainer
from record import machine_description, update_section

ROOT = Path(__file__).resolve().parents[1]
# ../shared next to the checkout (or next to the folder of worktrees it sits in)
SHARED = next((p / "shared" for p in ROOT.parents if (p / "shared" / "bench").is_dir()), ROOT)
REFERENCE = SHARED / "bench" / "reference_step.py"
SHAKESPEARE = SHARED / "data" / "tinyshakespeare.txt"
SHAPE = dict(n_layer=4, n_head=4, n_embd=128, block_size=64, batch_size=12)


def reference_step() -> Callable[[], None]:
    """One optimizer step of the reference, as its ``main`` runs it (a fresh random batch)."""
    spec = importlib.util.spec_from_file_location("reference_step", REFERENCE)
    ref = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ref)
    torch.manual_seed(0)
    model = ref.GPT(65, SHAPE["block_size"], SHAPE["n_layer"], SHAPE["n_head"], SHAPE["n_embd"])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
    B, T = SHAPE["batch_size"], SHAPE["block_size"]

    def step() -> None:
        x, y = torch.randint(65, (B, T)), torch.randint(65, (B, T))
        loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def minigpt_step(data: Path, out: Path, compile: str, dtype: str, mlp: str) -> Callable[[], None]:
    overrides = dict(SHAPE, data=str(data), out_dir=str(out), device="cpu", dropout=0.0, mlp=mlp)
    config = load_config(overrides={**overrides, "compile": compile, "dtype": dtype})
    return Trainer(config, force=True).train_step


# name: (--compile, --dtype, --mlp). The reference's MLP is nanoGPT's exact GELU (nn.GELU()),
# so the race's minigpt runs the same math (mlp gelu_exact); "tanh" variants run GPT-2's
# tanh GELU (mlp gelu, minigpt's default), which costs more on a CPU.
VARIANTS = {
    "minigpt eager": ("false", "float32", "gelu_exact"),
    "minigpt compiled": ("true", "float32", "gelu_exact"),
    "minigpt eager bf16": ("false", "bfloat16", "gelu_exact"),
    "minigpt compiled bf16": ("true", "bfloat16", "gelu_exact"),
    "minigpt eager tanh": ("false", "float32", "gelu"),
    "minigpt compiled tanh": ("true", "float32", "gelu"),
}


def race(variants: dict[str, Callable[[], None]], rounds: int, steps: int, warmup: int) -> dict:
    setup = {}
    for name, step in variants.items():
        start = time.perf_counter()
        for _ in range(warmup):
            step()
        setup[name] = time.perf_counter() - start
        print(f"{name}: {warmup} warm-up steps {setup[name]:.1f} s", flush=True)
    times: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    for r in range(rounds):
        for name, step in variants.items():
            for _ in range(steps):
                start, start_cpu = time.perf_counter(), time.thread_time()
                step()
                times[name].append(time.perf_counter() - start)
                cpu[name].append(time.thread_time() - start_cpu)
        line = ", ".join(f"{n} {statistics.median(t[-steps:]) * 1e3:.1f}" for n, t in times.items())
        print(f"round {r + 1}: {line} ms", flush=True)
    return {
        name: (statistics.median(t) * 1e3, statistics.median(cpu[name]) * 1e3, setup[name])
        for name, t in times.items()
    }


# Op families of a training step, by the name of the aten op (profiler self times).
OP_FAMILIES = {
    "matmuls": ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm"),
    "attention": ("scaled_dot_product",),
    "GELU": ("gelu",),
}


def where_time_goes(step: Callable[[], None], steps: int) -> dict[str, float]:
    """Milliseconds per step in each op family (the rest under "other"), from torch.profiler."""
    from torch.profiler import profile

    with profile() as prof:
        for _ in range(steps):
            step()
    ms = dict.fromkeys([*OP_FAMILIES, "other"], 0.0)
    for event in prof.key_averages():
        family = next(
            (f for f, names in OP_FAMILIES.items() if any(n in event.key for n in names)),
            "other",
        )
        ms[family] += event.self_cpu_time_total / 1e3 / steps
    return ms


def profile_table(variants: dict[str, Callable[[], None]], steps: int) -> list[str]:
    """Where each step's time goes, and the best ratio the reference's own matmuls and
    attention allow: a step that runs the same kernels at the same speed cannot beat
    reference total / (reference matmuls + attention), however cheap the rest becomes."""
    rows, ceiling = [], None
    for name, step in variants.items():
        ms = where_time_goes(step, steps)
        total = sum(ms.values())
        if ceiling is None:
            ceiling = total / (ms["matmuls"] + ms["attention"])
        shares = " | ".join(f"{v:.1f} ({v / total:.0%})" for v in ms.values())
        rows.append(f"| {name} | {total:.1f} | {shares} |")
    return [
        f"Where the time goes (torch.profiler, {steps} steps each, self time of the ops, ms per "
        "step and share):",
        "",
        "| step | total | " + " | ".join(OP_FAMILIES) + " | other |",
        "| --- | --- | " + " | ".join("---" for _ in OP_FAMILIES) + " | --- |",
        *rows,
        "",
        f"With the reference's matmuls and attention as they are, no step of the same kernels "
        f"can beat it by more than **{ceiling:.2f}x** (everything else free).",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=10, help="steps per variant per round")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: minigpt's)")
    parser.add_argument(
        "--variants", default=",".join(VARIANTS), help=f"comma-separated, of: {list(VARIANTS)}"
    )
    parser.add_argument(
        "--profile-steps", type=int, default=20, help="steps profiled per variant (0: none)"
    )
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = prepare_dataset([SHAKESPEARE], Path(tmp, "ds"), quiet=True)
        variants = {"reference": reference_step()}
        for i, name in enumerate(args.variants.split(",")):
            variants[name] = minigpt_step(data, Path(tmp, str(i)), *VARIANTS[name])
        if args.threads:
            torch.set_num_threads(args.threads)
        results = race(variants, args.rounds, args.steps, args.warmup)
        profile = profile_table(variants, args.profile_steps) if args.profile_steps else []
    ref_ms, ref_cpu = results["reference"][:2]
    rows = [
        f"| {name} | {ms:.1f} | {ref_ms / ms:.2f}x | {cpu:.1f} | {ref_cpu / cpu:.2f}x | {setup:.1f} s |"
        for name, (ms, cpu, setup) in results.items()
    ]
    command = (
        f"PYTHONPATH=src python benchmarks/train_step_race.py --rounds {args.rounds} "
        f"--steps {args.steps}" + (f" --threads {args.threads}" if args.threads else "")
    )
    if args.profile_steps != 20:
        command += f" --profile-steps {args.profile_steps}"
    if args.variants != ",".join(VARIANTS):
        command += f' --variants "{args.variants}"'
    text = "\n".join(
        [
            "## Training step vs the reference step (issue 17)",
            "",
            f"Machine: {machine_description()}. Command: `{command}`.",
            "",
            "| step | median wall ms/step | reference / this | median CPU ms/step "
            "| reference / this (CPU) | warm-up (incl. compile) |",
            "| --- | --- | --- | --- | --- | --- |",
            *rows,
            *([""] + profile if profile else []),
        ]
    )
    print(text)
    if not args.no_record:
        update_section("train-step-race", text)


if __name__ == "__main__":
    main()
