"""Planner accuracy: estimated vs measured peak memory of real training steps.

    PYTHONPATH=src python benchmarks/bench_planner.py            # CPU configs (+ GPU ones if CUDA)
    PYTHONPATH=src python benchmarks/bench_planner.py --gpu-only

Each config runs 2 optimizer steps of ``Trainer.train_step`` with grad_accum 2 in one fresh
subprocess (``minigpt.training.memprobe``): on CPU the measure is peak RSS growth, on CUDA
``torch.cuda.max_memory_allocated``. Prints a Markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import time

import torch

from minigpt.config import load_config
from minigpt.runtime import resolve_device, resolve_dtype
from minigpt.training.memprobe import measure_peaks
from minigpt.training.planner import estimate_memory

CPU_CASES = {
    "logits-heavy 1x16, V 8192": dict(
        n_layer=1, n_head=2, n_embd=16, block_size=32, vocab_size=8192, batch_size=32
    ),
    "activation-heavy 4x16, T 32": dict(
        n_layer=4, n_head=2, n_embd=16, block_size=32, vocab_size=64, batch_size=256
    ),
    "2x256, T 256, V 4096": dict(
        n_layer=2, n_head=4, n_embd=256, block_size=256, vocab_size=4096, batch_size=8
    ),
    "2x128, T 512, dropout 0.1 (math attention)": dict(
        n_layer=2,
        n_head=4,
        n_embd=128,
        block_size=512,
        vocab_size=2048,
        batch_size=8,
        dropout=0.1,
    ),
    "shakespeare-char, batch 8": dict(preset="shakespeare-char", vocab_size=65, batch_size=8),
    "cpu-demo, bf16 autocast": dict(
        preset="cpu-demo", vocab_size=96, batch_size=64, dtype="bfloat16"
    ),
}
GPT2 = dict(n_layer=12, n_head=12, n_embd=768, block_size=1024, vocab_size=50257, bias=True)
GPU_CASES = {
    "course-100m, micro 12, fp32": dict(preset="course-100m", dtype="float32"),
    "course-100m, micro 12, bf16": dict(preset="course-100m", dtype="bfloat16"),
    "course-100m, micro 24, bf16": dict(preset="course-100m", dtype="bfloat16", batch_size=24),
    "GPT-2 124M, micro 8, fp32": dict(GPT2, batch_size=8, dtype="float32", dropout=0.0),
    "GPT-2 124M, micro 8, bf16": dict(GPT2, batch_size=8, dtype="bfloat16", dropout=0.0),
    "GPT-2 124M, micro 16, bf16": dict(GPT2, batch_size=16, dtype="bfloat16", dropout=0.0),
}


def build(case: dict, device: str):
    values = dict(case)
    preset = values.pop("preset", None)
    return load_config(preset, overrides={**values, "grad_accum": 2, "device": device})


def compare(cases: dict[str, dict], device: str) -> None:
    configs = [build(c, device) for c in cases.values()]
    start = time.time()
    measured = measure_peaks(configs, steps=2, timeout=1800)
    print(f"\n{device}: {len(configs)} configs measured in {time.time() - start:.0f} s\n")
    print("| config | measured peak (MiB) | planner peak (MiB) | planner / measured |")
    print("| --- | ---: | ---: | ---: |")
    for name, config, peak in zip(cases, configs, measured, strict=True):
        dev = resolve_device(device)
        mixed = resolve_dtype(config.train.dtype, dev) != torch.float32
        est = estimate_memory(
            config.model, config.train.batch_size, mixed=mixed, device_type=dev.type
        ).peak
        print(f"| {name} | {peak / 2**20:,.1f} | {est / 2**20:,.1f} | {est / peak:.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpu-only", action="store_true")
    args = parser.parse_args()
    if not args.gpu_only:
        compare(CPU_CASES, "cpu")
    if torch.cuda.is_available():
        print(f"\nGPU: {torch.cuda.get_device_name()}")
        compare(GPU_CASES, "cuda")
    else:
        print("\nno CUDA GPU here: the course-100m and GPT-2 124M comparisons were skipped")


if __name__ == "__main__":
    main()
