"""Will a training run fit in a GPU's memory, and how long will it take?

The estimate follows what ``train.Trainer`` actually keeps alive in one optimizer step:

* static: fp32 weights (4 bytes/param), fp32 gradients (4) and AdamW's two moments (8);
* activations: the tensors autograd saves for backward, per block (residual stream inputs of
  both LayerNorms, the LayerNorm outputs the matmuls save, q/k/v, the attention output and its
  re-laid-out copy, the MLP's 4d-wide input and GELU output, dropout masks) plus the head;
* the peak on top of that, the largest of three moments: the start of backward (logits, the
  log-softmax the loss saved, and their gradients), the backward through the last block
  (the MLP's 4d-wide gradients), and the optimizer step (AdamW's per-tensor temporaries on CPU);
* with mixed precision (autocast) the saved activations are 2 bytes instead of 4, except the
  fp32 residual stream, and autocast keeps a 2-byte copy of every matmul weight until backward;
* framework overhead outside the allocator: the CUDA context and the caching allocator's slack.

SDPA flash / memory-efficient attention saves O(T) per head; without it ("math" attention) the
T x T attention matrix is saved per head. The trainer has no activation checkpointing, so the
planner does not offer it. Measured against peak RSS on CPU (tests, BENCHMARKS.md) and against
``torch.cuda.max_memory_allocated`` by ``benchmarks/bench_planner.py`` where CUDA is present.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass

import torch

from minigpt.config import ModelConfig, RunConfig, TrainConfig
from minigpt.errors import MiniGPTError
from minigpt.model.sizing import Breakdown, flops_per_token, param_breakdown, sized_model_config

GiB = 1024**3
DEFAULT_MFU = 0.4
CUDA_CONTEXT = int(0.5 * GiB)  # driver, cuBLAS and kernels: outside max_memory_allocated
ALLOCATOR_SLACK = 0.10  # the caching allocator reserves more than it hands out


@dataclass(frozen=True)
class GPU:
    """A device to plan for: usable memory and dense peak TFLOPS (0: unknown)."""

    name: str
    memory: int  # bytes the driver lets a process use
    mixed_tflops: float  # bf16 (fp16 where bf16 is missing) tensor cores, fp32 accumulate
    fp32_tflops: float  # fp32 matmuls as the trainer runs them (TF32 where the GPU has it)
    bf16: bool = True
    context: int = CUDA_CONTEXT  # memory the process needs outside the tensors


# Dense (no sparsity) peak TFLOPS from the vendors' data sheets, for what the trainer runs:
# (bf16 -- fp16 where bf16 is missing -- tensor cores with fp32 accumulation, fp32 matmuls,
# which train.py runs as TF32 on GPUs that have it). The one table for the planner's estimates
# and the trainer's MFU. Keys match torch.cuda.get_device_name() as substrings, first match
# wins: "H100 PCIe" precedes "H100", "A100" precedes "A10G" and "A10", "L40S" precedes "L4".
PEAK_TFLOPS: dict[str, tuple[float, float]] = {
    "H200": (989.0, 494.0),
    "H100 PCIe": (756.0, 378.0),
    "H100": (989.0, 494.0),
    "A100": (312.0, 156.0),
    "A10G": (70.0, 35.0),
    "A10": (125.0, 62.5),
    "L40S": (362.0, 183.0),
    "L4": (121.0, 60.0),
    "RTX 4090": (165.2, 82.6),
    "RTX 3090": (71.0, 35.6),
    "V100": (125.0, 15.7),
    "T4": (65.0, 8.1),
}


def peak_tflops(device_name: str) -> tuple[float, float]:
    """(mixed, fp32) peak TFLOPS of a GPU by name; (0, 0) for one not in the table."""
    for key, peaks in PEAK_TFLOPS.items():
        if key in device_name:
            return peaks
    return 0.0, 0.0


def _gpu(name: str, mib: int, bf16: bool = True) -> GPU:
    return GPU(name, mib * 1024**2, *peak_tflops(name), bf16)


# The GPUs `minigpt plan --gpu` knows by name; memory as nvidia-smi reports it.
GPUS: dict[str, GPU] = {
    "T4": _gpu("NVIDIA T4 16 GB", 15360, bf16=False),
    "L4": _gpu("NVIDIA L4 24 GB", 23034),
    "A10": _gpu("NVIDIA A10 24 GB", 23028),
    "A100-40": _gpu("NVIDIA A100 40 GB", 40960),
    "A100-80": _gpu("NVIDIA A100 80 GB", 81920),
    "H100": _gpu("NVIDIA H100 SXM 80 GB", 81559),
    "RTX3090": _gpu("NVIDIA RTX 3090 24 GB", 24576),
    "RTX4090": _gpu("NVIDIA RTX 4090 24 GB", 24564),
}


def parse_gpu(spec: str, tflops: float | None = None) -> GPU:
    """``T4``, ``a100-80``, ``H100`` ... or a memory size such as ``24GB`` / ``12 GiB``."""
    key = spec.strip().upper().replace("_", "-").replace(" ", "")
    names = {k.replace("-", ""): k for k in GPUS}
    if key.replace("-", "") in names:
        gpu = GPUS[names[key.replace("-", "")]]
    else:
        match = re.fullmatch(r"(\d+(?:\.\d+)?)GI?B", key)
        if not match:
            raise MiniGPTError(
                f"unknown GPU '{spec}'; use one of {', '.join(GPUS)} or a size like 24GB"
            )
        gpu = GPU(f"{match.group(1)} GB GPU", int(float(match.group(1)) * GiB), 0.0, 0.0)
    if tflops is not None:
        gpu = dataclasses.replace(gpu, mixed_tflops=tflops, fp32_tflops=tflops)
    return gpu


@dataclass(frozen=True)
class Memory:
    """Bytes of one training step: static state, saved activations and the peak on top."""

    weights: int
    grads: int
    optimizer: int
    activations: int  # saved for backward, all blocks and the head
    per_layer: int  # of which one block
    weight_copies: int  # autocast's low-precision copies of the matmul weights
    backward_start: int  # logits, log-probs and their gradients as backward begins
    last_block: int  # transients while back-propagating through the last block
    optimizer_step: int  # transients of the AdamW step (activations are gone by then)
    overhead: int  # outside the tensors: CUDA context and allocator slack

    @property
    def static(self) -> int:
        return self.weights + self.grads + self.optimizer

    @property
    def peak(self) -> int:
        """The most bytes of tensors alive at once (what max_memory_allocated reports)."""
        during_backward = self.activations + self.weight_copies
        return self.static + max(
            during_backward + self.backward_start,
            during_backward + self.last_block,
            self.optimizer_step,
        )

    @property
    def total(self) -> int:
        return self.peak + self.overhead


def optimizer_state_bytes(b: Breakdown, optimizer: str = "adamw") -> int:
    """AdamW keeps two fp32 moments per parameter; Muon one momentum per hidden matrix."""
    if optimizer != "muon":
        return 8 * b.total
    hidden = b.config.n_layer * sum(p.weights for p in b.block if p.kind == "linear")
    return 4 * hidden + 8 * (b.total - hidden)


def estimate_memory(
    model: ModelConfig,
    batch_size: int,
    *,
    mixed: bool = False,
    flash: bool | None = None,
    device_type: str = "cuda",
    context: int = CUDA_CONTEXT,
    optimizer: str = "adamw",
) -> Memory:
    """The memory of one training step of ``GPT(model)`` at micro-batch ``batch_size``.

    ``flash``: SDPA's flash / memory-efficient kernels (default: what SDPA picks on the device;
    on CPU, dropout makes it fall back to math attention).
    """
    b = param_breakdown(model)
    n = b.total
    B, T, d, V, L = batch_size, model.block_size, model.n_embd, model.vocab_size, model.n_layer
    btd, btv = B * T * d, B * T * V
    a = 2 if mixed else 4  # bytes of a saved activation (autocast computes matmuls in 16 bits)
    r = 4  # the residual stream and LayerNorm inputs stay fp32 under autocast
    cuda = device_type != "cpu"
    if flash is None:
        flash = cuda or model.dropout == 0
    # Dropout keeps a mask per element: a bool on CUDA, a float noise tensor on CPU.
    mask = (1 if cuda else a) if model.dropout > 0 else 0

    # One block: ln_1 and ln_2 inputs (r), ln_1/ln_2 outputs saved by c_attn/c_fc, q k v,
    # the attention output (already laid out as (B, T, C): the .contiguous() copies nothing),
    # c_fc output and GELU output (4d each).
    per_layer = btd * (2 * r + a * (1 + 3 + 1 + 1 + 4 + 4) + 2 * mask)
    per_layer += 2 * 2 * B * T * 4 + B * model.n_head * T * 4  # LayerNorm stats, logsumexp
    if not flash:  # math attention: scaled q and k copies, the softmaxed T x T matrix per head
        att = B * model.n_head * T * T
        per_layer += 2 * btd * a + att * a + (att * (mask + a) if model.dropout > 0 else 0)
    head_saved = btd * (r + a) + 2 * B * T * 8 + btd * mask  # ln_f in/out, x/y ids, emb dropout
    activations = L * per_layer + head_saved

    held = btv * a  # the trainer's `_, loss = model(x, y)` keeps the logits through backward
    # log-softmax output (saved), its gradient and the logits' gradient; under autocast the
    # fp32 upcast of the logits' gradient is what turns into it.
    backward_start = held + 3 * btv * 4
    # The MLP's 4d-wide gradients (GELU's input and output gradients, one of the two saved
    # inputs already freed) and the residual stream's gradient.
    last_block = held + btd * (4 * a + 2 * r)
    step_temps = 0 if cuda else 2 * b.largest_tensor * 4  # fused AdamW on CUDA has none
    peak_static = 16 * n
    overhead = (context if cuda else 0) + int(
        ALLOCATOR_SLACK * (peak_static + activations + backward_start)
    )
    return Memory(
        weights=4 * n,
        grads=4 * n,
        optimizer=optimizer_state_bytes(b, optimizer),
        activations=activations,
        per_layer=per_layer,
        weight_copies=2 * b.matmul_weights if mixed else 0,
        backward_start=backward_start,
        last_block=last_block,
        optimizer_step=held + step_temps,
        overhead=overhead,
    )


def largest_batch(fits: Callable[[int], bool], limit: int = 1 << 16) -> int:
    """The largest micro-batch for which ``fits(b)`` holds (memory grows with b); 0 if none."""
    if not fits(1):
        return 0
    lo, hi = 1, 2
    while hi <= limit and fits(hi):
        lo, hi = hi, hi * 2
    hi = min(hi, limit + 1)
    while hi - lo > 1:  # fits(lo) and not fits(hi)
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo


def split_batch(effective: int, max_micro: int) -> tuple[int, int]:
    """(micro-batch, grad_accum) reaching ``effective`` sequences per step, micro <= max_micro.

    Prefers an exact split (a divisor of ``effective``); when the best divisor would waste
    more than half the memory, takes the fewest accumulation steps and rounds the effective
    batch up instead.
    """
    if max_micro >= effective:
        return effective, 1
    divisor = max(m for m in range(1, max_micro + 1) if effective % m == 0)
    if 2 * divisor >= max_micro:
        return divisor, effective // divisor
    accum = math.ceil(effective / max_micro)
    return math.ceil(effective / accum), accum


@dataclass(frozen=True)
class Choice:
    """What to run for one precision: memory at the requested micro-batch, and the fix."""

    precision: str
    memory: Memory  # at the requested micro-batch, SDPA attention
    memory_math: Memory  # the same without flash / memory-efficient attention
    fits: bool
    max_micro: int
    micro: int
    accum: int
    tokens_per_s: float  # 0: peak FLOPs unknown
    seconds: float


@dataclass(frozen=True)
class Plan:
    model: ModelConfig
    gpu: GPU
    micro: int
    accum: int
    max_iters: int
    mfu: float
    flops_per_token: int
    choices: list[Choice]
    auto: bool = False  # batch_size auto: memory is shown at the micro-batch it picks
    optimizer: str = "adamw"


def _capacity_fits(
    model: ModelConfig, gpu: GPU, mixed: bool, device_type: str, optimizer: str = "adamw"
) -> Callable[[int], bool]:
    def fits(batch: int) -> bool:
        mem = estimate_memory(
            model,
            batch,
            mixed=mixed,
            device_type=device_type,
            context=gpu.context,
            optimizer=optimizer,
        )
        return mem.total <= gpu.memory

    return fits


def plan(
    config: RunConfig, gpu: GPU, *, mfu: float = DEFAULT_MFU, device_type: str = "cuda"
) -> Plan:
    """Memory, micro-batch and speed for ``config`` on ``gpu``, in fp32 and mixed precision."""
    if not 0 < mfu <= 1:
        raise MiniGPTError(f"MFU must be in (0, 1], got {mfu}; e.g. --mfu 0.4")
    model, t = sized_model_config(config), config.train
    effective = effective_batch(config)
    micro, accum = (t.batch_size, t.grad_accum) if t.batch_size else (effective, 1)
    fpt = flops_per_token(model)
    tokens_per_step = effective * model.block_size
    choices = []
    for precision in ("fp32", "mixed"):
        mixed = precision == "mixed"
        kw = dict(mixed=mixed, device_type=device_type, context=gpu.context, optimizer=t.optimizer)
        fits = _capacity_fits(model, gpu, mixed, device_type, t.optimizer)
        max_micro = largest_batch(fits)
        best = split_batch(effective, max_micro) if max_micro else (0, 0)
        at = micro if t.batch_size else max(1, best[0])  # auto: memory at what it would pick
        tflops = gpu.mixed_tflops if mixed else gpu.fp32_tflops
        speed = tflops * 1e12 * mfu / fpt
        choices.append(
            Choice(
                precision=precision,
                memory=estimate_memory(model, at, flash=True, **kw),
                memory_math=estimate_memory(model, at, flash=False, **kw),
                fits=fits(at),
                max_micro=max_micro,
                micro=best[0],
                accum=best[1],
                tokens_per_s=speed,
                seconds=t.max_iters * tokens_per_step / speed if speed else 0.0,
            )
        )
    return Plan(
        model, gpu, micro, accum, t.max_iters, mfu, fpt, choices, not t.batch_size, t.optimizer
    )


def effective_batch(config: RunConfig) -> int:
    """Sequences per optimizer step: the config's, or the target of ``--batch-size auto``."""
    t = config.train
    if t.batch_size == 0:
        return t.effective_batch or TrainConfig.batch_size * t.grad_accum
    return t.batch_size * t.grad_accum


def _gib(n: int) -> str:
    return f"{n / GiB:.2f}"


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def format_plan(p: Plan) -> str:
    """The report of ``minigpt plan``."""
    m, fp32, mixed = p.model, p.choices[0], p.choices[1]
    half = "bf16" if p.gpu.bf16 else "fp16"
    n = param_breakdown(m).total
    if p.auto:
        batch = f"batch size auto for {p.micro * p.accum} sequences"
    else:
        batch = f"micro-batch {p.micro} x grad_accum {p.accum} = {p.micro * p.accum} sequences"
    lines = [
        f"model: {n / 1e6:.2f}M parameters ({m.n_layer} layers, n_embd {m.n_embd}, vocab "
        f"{m.vocab_size:,}, block {m.block_size:,}); {batch} per step",
        f"device: {p.gpu.name}, {_gib(p.gpu.memory)} GiB usable",
        "",
    ]
    small = max(c.memory_math.total for c in p.choices) < GiB
    unit, scale = ("MiB", 1024**2) if small else ("GiB", GiB)
    lines.append(f"{'memory in ' + unit:<44}{'fp32':>10}{'mixed ' + half:>13}")

    def size(n: int) -> str:
        return f"{n / scale:,.1f}" if small else f"{n / scale:.2f}"

    def row(name: str, f, fmt=size) -> None:
        lines.append(f"{name:<44}{fmt(f(fp32)):>10}{fmt(f(mixed)):>13}")

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


# -- the trainer's side: the live device ----------------------------------------------------


def device_gpu(device: torch.device) -> GPU:
    """The live device as a GPU record: memory it can still use (context already counted)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        usable = free + torch.cuda.memory_reserved(device)
        name = torch.cuda.get_device_name(device)
        bf16 = torch.cuda.is_bf16_supported()
        return GPU(name, usable, *peak_tflops(name), bf16, context=0)
    if device.type == "mps":
        return GPU("Apple MPS", int(torch.mps.recommended_max_memory()), 0.0, 0.0, context=0)
    return GPU("CPU RAM", _available_ram(), 0.0, 0.0, context=0)


def _available_ram() -> int:
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not Linux: assume 8 GiB
        return 8 * GiB


def auto_batch(config: RunConfig, device: torch.device, dtype: torch.dtype) -> tuple[int, int]:
    """(micro-batch, grad_accum) for ``--batch-size auto`` on the live device."""
    model = sized_model_config(config)
    gpu = device_gpu(device)
    optimizer = config.train.optimizer
    fits = _capacity_fits(model, gpu, dtype != torch.float32, device.type, optimizer)
    max_micro = largest_batch(fits)
    if not max_micro:
        mem = estimate_memory(
            model, 1, mixed=dtype != torch.float32, device_type=device.type, optimizer=optimizer
        )
        raise MiniGPTError(
            f"the model does not fit on {gpu.name} even at micro-batch 1 (needs about "
            f"{_gib(mem.total)} GiB of {_gib(gpu.memory)}); use a smaller model or block_size"
        )
    return split_batch(effective_batch(config), max_micro)


def out_of_memory_message(
    config: RunConfig, device: torch.device, dtype: torch.dtype, step: int
) -> str:
    """One line for an OOM during training: what ran out, and the planner's suggestion."""
    t = config.train
    model = sized_model_config(config)
    mixed = dtype != torch.float32
    need = estimate_memory(
        model, t.batch_size, mixed=mixed, device_type=device.type, optimizer=t.optimizer
    )
    where = f"{device_gpu(device).name} ({device})"
    head = (
        f"out of memory at iteration {step} on {where} with micro-batch {t.batch_size} x "
        f"{model.block_size} tokens (the planner estimates {_gib(need.total)} GiB)"
    )
    try:
        micro, accum = auto_batch(config, device, dtype)
    except MiniGPTError:
        return f"{head}; even micro-batch 1 does not fit: use a smaller model or block_size"
    micro = min(micro, max(1, t.batch_size // 2))  # what just failed did not fit: go lower
    accum = math.ceil(effective_batch(config) / micro)
    return (
        f"{head}; try --batch-size {micro} --grad-accum {accum} (or --batch-size auto), "
        "then --resume from the last checkpoint"
    )


def is_out_of_memory(error: BaseException) -> bool:
    """CUDA/MPS raise OutOfMemoryError; the CPU allocator raises a RuntimeError."""
    if isinstance(error, torch.OutOfMemoryError):
        return True
    text = str(error)
    return isinstance(error, RuntimeError) and (
        "can't allocate memory" in text or "out of memory" in text.lower()
    )
