"""The report of ``minigpt plan``: the planner's numbers as a table and a few lines."""

from __future__ import annotations

import dataclasses

import torch

from minigpt.config import RunConfig
from minigpt.errors import MiniGPTError
from minigpt.model.sizing import param_breakdown, sized_model_config
from minigpt.runtime import GiB, gib, resolve_dtype
from minigpt.training.memprobe import measure_peak
from minigpt.training.planner import Plan, estimate_memory


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def _precision_note(p: Plan) -> str | None:
    """Why the mixed column is not plain bf16: fp16 needs the gradient scaler, and a GPU
    given by size may have either (the memory is the same; the speed is not)."""
    if p.half == "fp16":
        why = "this GPU has no bf16" if p.gpu.bf16 is False else "--dtype float16"
        return f"mixed fp16: float16 autocast with the gradient scaler ({why})"
    if p.half == "bf16/fp16":
        return "mixed bf16/fp16: bf16 where the GPU has it, else fp16 + gradient scaler (T4)"
    return None


def format_plan(p: Plan) -> str:
    """The report of ``minigpt plan``."""
    m, fp32, mixed = p.model, p.choices[0], p.choices[1]
    half = p.half
    n = param_breakdown(m).total
    if p.auto:
        batch = f"batch size auto for {p.micro * p.accum} sequences"
    else:
        batch = f"micro-batch {p.micro} x grad_accum {p.accum} = {p.micro * p.accum} sequences"
    lines = [
        f"model: {n / 1e6:.2f}M parameters ({m.n_layer} layers, n_embd {m.n_embd}, vocab "
        f"{m.vocab_size:,}, block {m.block_size:,}); {batch} per step",
        f"device: {p.gpu.name}, {gib(p.gpu.memory)} GiB usable",
        "",
    ]
    small = max(c.memory_math.total for c in p.choices) < GiB
    unit, scale = ("MiB", 1024**2) if small else ("GiB", GiB)
    width = max(13, len(half) + 8)  # "mixed bf16/fp16" is wider than "mixed bf16"
    lines.append(f"{'memory in ' + unit:<44}{'fp32':>10}{'mixed ' + half:>{width}}")

    def size(n: int) -> str:
        return f"{n / scale:,.1f}" if small else f"{n / scale:.2f}"

    def row(name: str, f, fmt=size) -> None:
        lines.append(f"{name:<44}{fmt(f(fp32)):>10}{fmt(f(mixed)):>{width}}")

    row("weights (fp32 master copy)", lambda c: c.memory.weights)
    row("gradients (fp32)", lambda c: c.memory.grads)
    states = "Muon + AdamW states (fp32)" if p.optimizer == "muon" else "AdamW states (2 x fp32)"
    row(states, lambda c: c.memory.optimizer)
    row("activations per block, SDPA flash", lambda c: c.memory.per_layer)
    row("activations per block, without flash", lambda c: c.memory_math.per_layer)
    row(f"activations, {m.n_layer} blocks + head, SDPA flash", lambda c: c.memory.activations)
    row("autocast weight copies", lambda c: c.memory.weight_copies)
    row("logits/loss tensors at backward start", lambda c: c.memory.backward_start)
    row("peak allocated, SDPA flash", lambda c: c.memory.peak)
    row("peak allocated, without flash", lambda c: c.memory_math.peak)
    context = "CUDA context + allocator slack" if p.gpu.context else "allocator slack"
    row(f"overhead ({context})", lambda c: c.memory.overhead)
    row("total, SDPA flash", lambda c: c.memory.total)
    row("total, without flash", lambda c: c.memory_math.total)
    row("fits (SDPA flash)", lambda c: c.fits, lambda v: "yes" if v else "NO")
    row(
        "fits without flash",
        lambda c: c.memory_math.total <= p.gpu.memory,
        lambda v: "yes" if v else "NO",
    )
    row("largest micro-batch that fits", lambda c: c.max_micro, str)
    lines.append("activation checkpointing: not offered (the trainer does not support it)")
    note = _precision_note(p)
    if note:
        lines.append(note)
    lines.append("")
    for c in (fp32, mixed):
        name = "fp32" if c is fp32 else f"mixed {half}"
        if not c.max_micro:
            lines.append(f"{name}: does not fit even at micro-batch 1; use a smaller model")
            continue
        lines.append(
            f"{name}: --batch-size {c.micro} --grad-accum {c.accum} "
            f"({c.micro * c.accum} sequences per step)"
        )
    lines.append("")
    lines.append(
        f"FLOPs per token (6N + 12 L T d): {p.flops_per_token:,} "
        f"= {p.flops_per_token / 1e9:.3f} GFLOP"
    )
    for c in (fp32, mixed):
        tflops = p.gpu.mixed_tflops if c is mixed else p.gpu.fp32_tflops
        name = "fp32" if c is fp32 else f"mixed {half}"
        if not c.tokens_per_s:
            lines.append(f"{name}: peak FLOPs unknown for this device; pass --tflops")
            continue
        lines.append(
            f"{name}: {tflops:g} TFLOPS peak x {p.mfu:.0%} MFU -> {c.tokens_per_s:,.0f} tokens/s,"
            f" {p.max_iters:,} steps in {_duration(c.seconds)}"
        )
    return "\n".join(lines)


def measured_against_estimate(config: RunConfig, device: torch.device) -> str:
    """``minigpt plan --measure``: two real steps at the config's micro-batch on this machine,
    their peak memory against the planner's estimate."""
    if not config.train.batch_size:
        raise MiniGPTError("--measure needs a numeric --batch-size (not auto)")
    model = sized_model_config(config)
    run = dataclasses.replace(config, model=model)
    dtype = resolve_dtype(config.train.dtype, device)
    est = estimate_memory(
        model, config.train.batch_size, mixed=dtype != torch.float32, device_type=device.type
    )
    measured = measure_peak(run)
    return (
        f"\nmeasured on {device} ({str(dtype).removeprefix('torch.')}), micro-batch "
        f"{config.train.batch_size}: peak {measured / GiB:.3f} GiB, planner "
        f"{est.peak / GiB:.3f} GiB (ratio {est.peak / measured:.2f})"
    )
