"""What a training run prints: the log line, the eval line and the closing summary.

``Speedometer`` keeps the clock of the run (tokens per second, MFU, ETA) so that the trainer
only tells it the losses of its steps; the functions turn its records into the lines a person
reads. The records themselves are what ``metrics.jsonl`` and the callbacks receive.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from minigpt.config import RunConfig
from minigpt.model.sizing import flops_per_token
from minigpt.training.monitor import (
    format_bytes,
    format_duration,
    gpu_peak_flops,
    mfu,
    peak_memory,
)
from minigpt.training.state import TrainResult, TrainState


class Speedometer:
    """Throughput since the run (re)started and over the steps since the last log line."""

    def __init__(
        self, config: RunConfig, device: torch.device, dtype: torch.dtype, world_size: int
    ) -> None:
        t = config.train
        # distributed: all ranks together
        self.tokens_per_step = t.batch_size * t.grad_accum * world_size * config.model.block_size
        self.flops_per_token = flops_per_token(config.model)
        peak = gpu_peak_flops(device, dtype)  # distributed: all GPUs together
        self.peak_flops = peak * world_size if peak else peak
        self.start(0)

    def start(self, step: int) -> None:
        self.start_time = self.window_start = time.time()
        self.start_step = step
        self.window_losses: list[float] = []

    def add(self, loss: float) -> None:
        self.window_losses.append(loss)

    def log_record(
        self, step: int, lr: float, grad_norm: float | None, stop: int
    ) -> dict[str, Any]:
        """The record of one log line, over the steps since the previous one (then reset)."""
        seconds = time.time() - self.window_start
        steps = max(1, len(self.window_losses))
        tok_s = steps * self.tokens_per_step / seconds if seconds > 0 else 0.0
        record: dict[str, Any] = {
            "iter": step,
            "tokens": step * self.tokens_per_step,
            "loss": sum(self.window_losses) / steps,
            "lr": lr,
            "ms_per_iter": 1000 * seconds / steps,
            "tokens_per_second": tok_s,
            "grad_norm": grad_norm,
            "mfu": mfu(self.flops_per_token, tok_s, self.peak_flops),
            "elapsed": time.time() - self.start_time,
        }
        done = step - self.start_step
        if done:
            record["eta"] = (stop - step) * record["elapsed"] / done
        self.window_start, self.window_losses = time.time(), []
        return record

    def totals(self, step: int) -> tuple[float, float]:
        """Seconds since the start, and tokens per second over them."""
        seconds = time.time() - self.start_time
        tok_s = (step - self.start_step) * self.tokens_per_step / seconds if seconds else 0.0
        return seconds, tok_s


def progress_bar(total: int, initial: int, show: bool) -> tqdm:
    """tqdm's bar of steps (messages go above it, see ``setup.Console``); hidden unless ``show``."""
    return tqdm(
        total=total,
        initial=initial,
        disable=None if show else True,
        unit="it",
        dynamic_ncols=True,
        leave=False,
    )


def log_line(r: dict[str, Any], max_iters: int, last_eval: dict[str, Any] | None) -> str:
    parts = [
        f"iter {r['iter']:6d}/{max_iters}",
        f"loss {r['loss']:.4f}",
        f"lr {r['lr']:.2e}",
        f"{r['ms_per_iter']:7.1f} ms/iter",
        f"{r['tokens_per_second']:9,.0f} tok/s",
    ]
    if last_eval:
        parts.insert(2, f"val {last_eval['val']:.4f}")
    if r["mfu"] is not None:
        parts.append(f"mfu {100 * r['mfu']:.1f}%")
    if "eta" in r:
        parts.append(f"eta {format_duration(r['eta'])}")
    return " | ".join(parts)


def eval_record(
    step: int, tokens_per_step: int, losses: dict[str, float], val_bpb: float, lr: float
) -> dict[str, Any]:
    """The record of one evaluation, as the history, metrics.jsonl and callbacks have it."""
    val = losses["val"]
    return {
        "iter": step,
        "tokens": step * tokens_per_step,
        **losses,
        "val_ppl": math.exp(val) if val < 700 else float("inf"),
        "val_bpb": val_bpb,
        "lr": lr,
    }


def eval_line(r: dict[str, Any], best_val_loss: float) -> str:
    return (
        f"eval {r['iter']:6d} | train {r['train']:.4f} | val {r['val']:.4f} "
        f"| ppl {r['val_ppl']:.2f} | {r['val_bpb']:.3f} bpb "
        f"| best val {best_val_loss:.4f}"
    )


def result(
    speed: Speedometer,
    state: TrainState,
    run_dir: Path,
    device: torch.device,
    *,
    last_losses: tuple[float, float],
    best_val_bpb: float,
    stop_reason: str,
) -> TrainResult:
    """The run's ``TrainResult``; ``last_losses`` are the (train, val) of the last evaluation."""
    seconds, tok_s = speed.totals(state.step)
    return TrainResult(
        run_dir=run_dir,
        iterations=state.step,
        train_loss=last_losses[0],
        val_loss=last_losses[1],
        best_val_loss=state.best_val_loss,
        seconds=seconds,
        tokens_per_second=tok_s,
        history=state.history,
        tokens_seen=state.step * speed.tokens_per_step,
        best_val_bpb=best_val_bpb,
        peak_memory=peak_memory(device),
        mfu=mfu(speed.flops_per_token, tok_s, speed.peak_flops),
        skipped_steps=state.skipped_steps,
        stop_reason=stop_reason,
    )


def summary(r: TrainResult, config: RunConfig, on_gpu: bool) -> str:
    t = config.train
    lines = [
        f"summary: {r.iterations} iterations, {r.tokens_seen:,} tokens seen, "
        f"{format_duration(r.seconds)} wall time, {r.tokens_per_second:,.0f} tok/s"
        + (f", mfu {100 * r.mfu:.1f}%" if r.mfu is not None else ""),
        (
            f"  best val loss {r.best_val_loss:.4f} | perplexity {r.best_val_perplexity:.2f} "
            f"| {r.best_val_bpb:.3f} bits per byte (on {t.eval_iters} batches; "
            f"`minigpt eval {r.run_dir} --data {t.data}` reads all of val)"
            if math.isfinite(r.best_val_loss)
            else "  no evaluation yet"
        ),
        f"  peak memory {format_bytes(r.peak_memory)}"
        + (" (GPU)" if on_gpu else " (process RSS)")
        + (f" | {r.skipped_steps} bad steps skipped" if r.skipped_steps else ""),
    ]
    return "\n".join(lines)
