"""The GPU check: everything this CPU-only project could not measure, in one run of minutes.

    python benchmarks/gpu_check.py              # on a CUDA machine: measure, print, record
    python benchmarks/gpu_check.py --dry-run    # the same code paths at tiny sizes, on CPU
    python benchmarks/gpu_check.py --only parity --diagnose-fp16   # fp16 parity and its diagnosis

On one H100/H200-class GPU it takes a few minutes (well under 8) and measures:

1. training tokens/s and MFU of ``course-100m`` and ``modern-124m`` at bf16 with
   ``torch.compile`` (the real ``Trainer.train_step``, after warm-up steps that compile);
2. peak memory of ``course-100m`` at micro-batch 12 against ``minigpt plan``'s estimate, with
   fp16 and the gradient scaler (as on a T4) and with bf16 (fresh process each, as
   ``minigpt plan --measure``); more than 15% apart is a failure;
3. loss parity: the same small model, seed and batches trained 50 steps in fp32, bf16 and
   fp16; the mixed runs' mean loss over the last 10 steps must be within 2% of fp32's after
   as many updates (fp16's scaler skips the steps whose gradients overflow, and says how many);
   when fp16 misses (or under ``--diagnose-fp16``), ``fp16_diagnosis.py`` adds ``info`` rows
   on why: first-step gradients against fp32's, activation peaks, one factor changed at a time;
4. KV-cache generation tokens/s at the GPT-2 124M shape (greedy, batch 1), fp32 and bf16.

It prints one table and exits non-zero if anything failed (a crash in one part is a failed row;
the others still run). On a bare machine with only the repo it first makes ``.venv-gpu-check``
and installs minigpt there (``pip install -e .``, which brings the CUDA build of torch from
PyPI), then re-runs itself with that interpreter. Results go to the ``gpu-check`` section of
BENCHMARKS.md (not with ``--dry-run`` or ``--no-record``; ``--only`` runs write a section of
their own, ``gpu-check-parity`` for ``--only parity``). ``tests/test_gpu_check.py`` runs
the dry run, so the script cannot rot while no GPU is at hand.
The sizes of both runs, the synthetic dataset and the run configs are in
``gpu_check_sizes.py``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gpu_check_sizes import DRY, GPU, Sizes, config_for, synthetic_dataset

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv-gpu-check"
REQUIRED = ("torch", "numpy", "safetensors", "tqdm", "tomli_w", "tokenizers", "tiktoken", "ftfy")
MEMORY_TOLERANCE = 0.15
PARITY_TOLERANCE = 0.02


def missing_modules(names: tuple[str, ...] = REQUIRED) -> list[str]:
    """The modules minigpt needs that this interpreter cannot import."""
    return [n for n in names if importlib.util.find_spec(n) is None]


def bootstrap() -> None:
    """Re-run under a venv with minigpt installed if this interpreter lacks its requirements."""
    missing = missing_modules()
    if not missing:
        sys.path.insert(0, str(ROOT / "src"))
        sys.path.insert(0, str(ROOT / "benchmarks"))
        return
    if Path(sys.executable).resolve().is_relative_to(VENV.resolve()):
        raise SystemExit(f"gpu_check: still missing {missing} after installing; giving up")
    print(f"gpu_check: missing {', '.join(missing)}; installing minigpt into {VENV} ...")
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "-e", str(ROOT)], check=True
    )  # the default torch wheel on Linux is the CUDA build
    os.execv(str(python), [str(python), __file__, *sys.argv[1:]])


@dataclass
class Row:
    """A line of the table; ``ok=None`` is information (the fp16 diagnosis), not a check."""

    check: str
    result: str
    ok: bool | None = True


def throughput(preset: str, data: Path, tmp: Path, sizes: Sizes) -> Row:
    """Tokens/s and MFU of ``preset`` at bf16 with compile, over timed optimizer steps."""
    import torch

    from minigpt.model.sizing import flops_per_token
    from minigpt.training.monitor import gpu_peak_flops, mfu
    from minigpt.training.trainer import Trainer

    config = config_for(
        preset, data, tmp / preset, sizes, dtype="bfloat16", compile=sizes.compile,
        **sizes.train_overrides,
    )  # fmt: skip
    trainer = Trainer(config, force=True, watch=False)
    sync = torch.cuda.synchronize if trainer.device.type == "cuda" else (lambda: None)
    start = time.perf_counter()
    for _ in range(sizes.warmup):
        trainer.train_step()
    sync()
    warm = time.perf_counter() - start
    times = []
    for _ in range(sizes.steps):
        start = time.perf_counter()
        trainer.train_step()
        sync()
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    tokens = trainer.tokens_per_step / seconds
    peak = gpu_peak_flops(trainer.device, torch.bfloat16)
    util = mfu(flops_per_token(config.model), tokens, peak)
    mfu_text = f"MFU {util:.1%}" if util is not None else "MFU n/a (no GPU peak known)"
    compiled = "compiled" if trainer.forward_model.compiled else "eager"
    return Row(
        f"train {preset} (bf16, {compiled}, micro {config.train.batch_size})",
        f"{tokens:,.0f} tok/s, {seconds * 1000:.1f} ms/step, {mfu_text}; "
        f"warm-up {sizes.warmup} steps {warm:.0f} s",
    )


def memory(data: Path, tmp: Path, sizes: Sizes) -> list[Row]:
    """``minigpt plan --measure`` for course-100m at micro-batch 12, fp16 and bf16.

    Both run in one fresh process (``memprobe``), each from a reset peak.
    """
    import dataclasses

    import torch

    from minigpt.model.sizing import sized_model_config
    from minigpt.runtime import resolve_device, resolve_dtype
    from minigpt.training.memprobe import measure_peaks
    from minigpt.training.planner import estimate_memory

    configs, estimates = [], []
    for dtype in ("float16", "bfloat16"):
        overrides = {"batch_size": 12, **sizes.memory_overrides}
        config = config_for(
            "course-100m", data, tmp / f"mem-{dtype}", sizes, dtype=dtype, compile="false",
            **overrides,
        )  # fmt: skip
        device = resolve_device(config.train.device)
        model = sized_model_config(config)
        mixed = resolve_dtype(dtype, device) != torch.float32
        estimates.append(
            estimate_memory(model, config.train.batch_size, mixed=mixed, device_type=device.type)
        )
        configs.append(dataclasses.replace(config, model=model))
    rows = []
    for config, estimate, measured in zip(configs, estimates, measure_peaks(configs), strict=True):
        ratio = estimate.peak / measured
        scaler = " + scaler" if config.train.dtype == "float16" else ""
        rows.append(
            Row(
                f"peak memory course-100m micro {config.train.batch_size} "
                f"({config.train.dtype}{scaler})",
                f"measured {measured / 2**20:,.0f} MiB, plan {estimate.peak / 2**20:,.0f} MiB, "
                f"plan/measured {ratio:.2f}",
                abs(ratio - 1) <= MEMORY_TOLERANCE,
            )
        )
    return rows


def parity_trainer(data: Path, out: Path, sizes: Sizes, dtype: str, **overrides):
    """A fresh run of the parity model: same seed, batches and schedule whatever the dtype."""
    from minigpt.training.trainer import Trainer

    config = config_for(
        None, data, out, sizes, dtype=dtype, compile="false", dropout=0.0, lr=1e-3,
        warmup_iters=5, max_iters=sizes.parity_steps, **{**sizes.parity_model, **overrides},
    )  # fmt: skip
    return Trainer(config, force=True, watch=False)


def parity(data: Path, tmp: Path, sizes: Sizes, curves: dict) -> list[Row]:
    """The same run in fp32, bf16 and fp16 (with the scaler); mixed must track fp32.

    ``curves`` receives each dtype's losses (the fp16 diagnosis compares against fp32's).
    """
    from fp16_diagnosis import compare, train_curve

    skipped = {}
    for dtype in ("float32", "bfloat16", "float16"):
        trainer = parity_trainer(data, tmp / f"parity-{dtype}", sizes, dtype)
        curves[dtype], skipped[dtype] = train_curve(trainer, sizes.parity_steps)
    rows = []
    for dtype in ("bfloat16", "float16"):
        # Compared at the same number of updates: fp32's losses after as many applied steps.
        c = compare(curves["float32"], curves[dtype], skipped[dtype], PARITY_TOLERANCE)
        rows.append(
            Row(
                f"loss parity {dtype} vs float32 ({sizes.parity_steps} steps)",
                f"last-{c.tail} mean {c.mean:.5f} vs {c.ref:.5f} ({c.change:+.3%}) after "
                f"{c.applied} updates ({c.skipped} skipped by the scaler); "
                f"first step {curves[dtype][0]:.5f} vs {curves['float32'][0]:.5f}",
                abs(c.change) <= PARITY_TOLERANCE,
            )
        )
    return rows


def fp16_diagnosis(data: Path, tmp: Path, sizes: Sizes, curves: dict) -> list[Row]:
    """Why fp16 misses fp32 (``fp16_diagnosis.py``): informational rows, about 60 s on a GPU."""
    from fp16_diagnosis import diagnose

    if "float32" not in curves:
        raise RuntimeError("needs the parity check's fp32 run, which did not finish")

    def make_trainer(label: str, dtype: str, **overrides):
        out = tmp / ("diag-" + "".join(c if c.isalnum() else "-" for c in label))
        return parity_trainer(data, out, sizes, dtype, **overrides)

    infos = diagnose(make_trainer, curves["float32"], sizes.parity_steps, PARITY_TOLERANCE)
    return [Row(check, result, None) for check, result in infos]


def needs_diagnosis(rows: list[Row], always: bool) -> bool:
    """Diagnose fp16 when asked or when its parity row failed."""
    return always or any(r.check.startswith("loss parity float16") and not r.ok for r in rows)


def generation(sizes: Sizes) -> list[Row]:
    """Greedy KV-cache decoding, batch 1, at the GPT-2 124M shape in fp32 and bf16."""
    import torch

    from minigpt.config import ModelConfig
    from minigpt.model import GPT

    torch.manual_seed(0)
    device = torch.device(sizes.device)
    model = GPT(ModelConfig(dropout=0.0, **sizes.generation_model)).to(device).eval()
    prompt = torch.randint(0, model.config.vocab_size, (1, 16), device=device)
    rows = []
    for dtype in (torch.float32, torch.bfloat16):
        model.to(dtype)
        model.generate(prompt, 4, temperature=0.0)  # warm-up
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = model.generate(prompt, sizes.generation_tokens, temperature=0.0)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        assert out.shape == (1, 16 + sizes.generation_tokens)
        name = str(dtype).removeprefix("torch.")
        params = model.num_params() / 1e6
        rows.append(
            Row(
                f"generation {params:.0f}M {name} (KV cache, greedy, batch 1)",
                f"{sizes.generation_tokens / seconds:,.1f} tok/s",
            )
        )
    return rows


def guarded(name: str, fn: Callable[[], Row | list[Row]]) -> list[Row]:
    """A check's rows, or one failed row with the error if it crashed."""
    try:
        result = fn()
    except Exception as e:  # one broken check must not hide the others
        traceback.print_exc()
        return [Row(name, f"FAILED: {type(e).__name__}: {str(e).splitlines()[0][:160]}", False)]
    return result if isinstance(result, list) else [result]


CHECKS = ("train", "memory", "parity", "generation")


def run_checks(sizes: Sizes, only: tuple[str, ...] = CHECKS, diagnose: bool = False) -> list[Row]:
    """The checks in ``only``; after parity, the fp16 diagnosis if asked or if fp16 failed."""
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        data = synthetic_dataset(tmp)
        if "train" in only:
            for preset in ("course-100m", "modern-124m"):
                rows += guarded(f"train {preset}", lambda p=preset: throughput(p, data, tmp, sizes))
        if "memory" in only:
            rows += guarded("peak memory", lambda: memory(data, tmp, sizes))
        if "parity" in only:
            curves: dict = {}
            rows += guarded("loss parity", lambda: parity(data, tmp, sizes, curves))
            if needs_diagnosis(rows, diagnose):
                rows += guarded("fp16 diagnosis", lambda: fp16_diagnosis(data, tmp, sizes, curves))
        if "generation" in only:
            rows += guarded("generation", lambda: generation(sizes))
    return rows


def table(rows: list[Row], header: str) -> str:
    lines = [header, "", "| check | result | ok |", "| --- | --- | --- |"]
    marks = {True: "yes", False: "**FAIL**", None: "info"}
    lines += [f"| {r.check} | {r.result} | {marks[r.ok]} |" for r in rows]
    return "\n".join(lines)


def section(only: tuple[str, ...]) -> tuple[str, str]:
    """BENCHMARKS.md's section for a run and its heading: a run of some checks gets its own
    section, so that it never replaces the full table."""
    if set(only) == set(CHECKS):
        return "gpu-check", "## GPU check (issue 17)"
    names = [c for c in CHECKS if c in only]
    return "gpu-check-" + "-".join(names), f"## GPU check (issue 17): {', '.join(names)} only"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes on the CPU")
    parser.add_argument("--no-record", action="store_true", help="do not update BENCHMARKS.md")
    parser.add_argument(
        "--diagnose-fp16", action="store_true",
        help="run the fp16 diagnosis even if fp16 parity passes (it runs when it fails)",
    )  # fmt: skip
    parser.add_argument(
        "--only", nargs="+", choices=CHECKS, default=list(CHECKS), metavar="CHECK",
        help=f"run only these checks (of {', '.join(CHECKS)}); recorded in their own section",
    )  # fmt: skip
    args = parser.parse_args()
    bootstrap()
    import torch

    if not args.dry_run and not torch.cuda.is_available():
        print("gpu_check: no CUDA GPU here (torch.cuda.is_available() is False); "
              "use --dry-run to test the script on a CPU")  # fmt: skip
        return 2
    sizes = DRY if args.dry_run else GPU
    start = time.perf_counter()
    rows = run_checks(sizes, tuple(args.only), args.diagnose_fp16)
    from record import machine_description

    command = shlex.join(["python", "benchmarks/gpu_check.py", *sys.argv[1:]])
    header = (
        f"Machine: {machine_description()}. Command: `{command}`; "
        f"{time.perf_counter() - start:.0f} s in all."
    )
    text = table(rows, header)
    print(text)
    if not args.dry_run and not args.no_record:
        from record import update_section

        name, heading = section(tuple(args.only))
        update_section(name, f"{heading}\n\n{text}")
    return 0 if all(r.ok is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
