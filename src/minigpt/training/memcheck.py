"""Refuse a CPU training run that cannot fit in RAM, before it allocates anything.

The planner's estimate of one step's peak (``planner.estimate_memory``: weights, gradients,
optimizer state, saved activations, the logits at the start of backward, 10 % slack) is set
against the RAM this process may use (``hostmem.usable_ram``: available memory and the cgroup
limit, less a safety margin). When it does not fit, the one-line error says how much is
needed and suggests what does fit: the largest micro-batch (with the gradient accumulation
that keeps the step's batch) or, when not even one sequence fits, the largest block size.
"""

from __future__ import annotations

import dataclasses

import torch

from minigpt.config import ModelConfig, RunConfig
from minigpt.hostmem import check_disabled, largest_fitting, require_ram, usable_ram
from minigpt.model.sizing import param_breakdown, sized_model_config
from minigpt.training.planner import effective_batch, estimate_memory, split_batch


def training_peak(model: ModelConfig, batch: int, dtype: torch.dtype, optimizer: str) -> int:
    """Bytes one CPU training step of ``model`` at micro-batch ``batch`` needs at its peak."""
    mixed = dtype != torch.float32
    return estimate_memory(model, batch, mixed=mixed, device_type="cpu", optimizer=optimizer).total


def largest_block(model: ModelConfig, dtype: torch.dtype, optimizer: str, budget: int) -> int:
    """The longest block size (up to the model's) at which micro-batch 1 fits ``budget``;
    rounded down to a multiple of 64 when that long. 0 if not even a block of 1 fits."""

    def fits(block: int) -> bool:
        shorter = dataclasses.replace(model, block_size=block)
        return training_peak(shorter, 1, dtype, optimizer) <= budget

    block = largest_fitting(fits, limit=max(1, model.block_size - 1))
    return block - block % 64 if block >= 64 else block


def check_training_ram(config: RunConfig, dtype: torch.dtype) -> None:
    """Raise ``MiniGPTError`` (one line, with a suggestion) when the run's micro-batch would
    not fit in this machine's RAM; ``MINIGPT_NO_MEMORY_CHECK=1`` skips the check."""
    if check_disabled():
        return
    model, t = sized_model_config(config), config.train
    need = training_peak(model, t.batch_size, dtype, t.optimizer)
    budget = usable_ram()
    if need <= budget:
        return
    params = param_breakdown(model).total
    what = (
        f"training {params / 1e6:,.2f}M parameters at micro-batch {t.batch_size} x "
        f"{model.block_size:,} tokens ({'fp32' if dtype == torch.float32 else 'mixed precision'})"
    )
    max_micro = largest_fitting(lambda b: training_peak(model, b, dtype, t.optimizer) <= budget)
    if max_micro:
        micro, accum = split_batch(effective_batch(config), max_micro)
        fix = f"try --batch-size {micro} --grad-accum {accum} (or --batch-size auto)"
    else:
        block = largest_block(model, dtype, t.optimizer, budget)
        fix = (
            f"not even one sequence fits: try --block-size {block} or a smaller model"
            if block
            else "not even a block of one token fits: use a smaller model"
        )
    require_ram(need, what, fix)
