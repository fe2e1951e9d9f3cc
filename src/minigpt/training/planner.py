"""Will a training run fit in a GPU's memory, and how long will it take?

The estimate follows what the trainer actually keeps alive in one optimizer step:

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
import re
from collections.abc import Callable
from dataclasses import dataclass

import torch

from minigpt.config import ModelConfig, RunConfig, TrainConfig
from minigpt.errors import MiniGPTError
from minigpt.gpus import CUDA_CONTEXT, DEFAULT_MFU, GPU, GPUS
from minigpt.hostmem import GiB, gib
from minigpt.hostmem import largest_fitting as largest_batch
from minigpt.model.sizing import Breakdown, flops_per_token, param_breakdown, sized_model_config
from minigpt.runtime import device_gpu

ALLOCATOR_SLACK = 0.10  # the caching allocator reserves more than it hands out


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
        size = int(float(match.group(1)) * GiB)
        gpu = GPU(f"{match.group(1)} GB GPU", size, 0.0, 0.0, bf16=None)  # T4 or RTX 3060?
    if tflops is not None and not (tflops > 0 and math.isfinite(tflops)):
        raise MiniGPTError(f"--tflops must be a positive number, got {tflops}; e.g. --tflops 65")
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
    half: str = "bf16"  # the mixed column's 16-bit type (mixed_precision)


def mixed_precision(dtype: str, gpu: GPU) -> str:
    """What ``train --dtype DTYPE`` autocasts to on ``gpu``, as the mixed column's label.

    ``auto`` mirrors ``runtime.resolve_dtype``: bf16 where the GPU has it, else fp16 (with the
    gradient scaler); a GPU known only by its size may be either (a 16 GB T4 has no bf16, an
    RTX 3060 has), so the label names both. Both keep 2-byte activations and weight copies,
    so the memory figures hold for either.
    """
    if dtype in ("bfloat16", "float16"):
        return {"bfloat16": "bf16", "float16": "fp16"}[dtype]
    return {True: "bf16", False: "fp16", None: "bf16/fp16"}[gpu.bf16]


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
        model,
        gpu,
        micro,
        accum,
        t.max_iters,
        mfu,
        fpt,
        choices,
        not t.batch_size,
        t.optimizer,
        mixed_precision(t.dtype, gpu),
    )


def effective_batch(config: RunConfig) -> int:
    """Sequences per optimizer step: the config's, or the target of ``--batch-size auto``."""
    t = config.train
    if t.batch_size == 0:
        return t.effective_batch or TrainConfig.batch_size * t.grad_accum
    return t.batch_size * t.grad_accum


# -- the trainer's side: the live device ----------------------------------------------------


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
            f"{gib(mem.total)} GiB of {gib(gpu.memory)}); use a smaller model or block_size"
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
        f"{model.block_size} tokens (the planner estimates {gib(need.total)} GiB)"
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
