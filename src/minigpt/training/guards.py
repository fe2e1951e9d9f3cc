"""The loss guard: a NaN/inf loss or a loss spike is caught before its update is applied.

A bad step costs more than it shows: one NaN update poisons every weight, and a spike can
throw the run off a good path for thousands of steps. The guard looks at each step's loss
before the optimizer does; the run then stops (keeping the last good checkpoint) or, with
``on_bad_loss skip``, drops that step's gradients and goes on.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

from minigpt.checkpoint import checkpoint_dirs
from minigpt.config import TrainConfig
from minigpt.errors import MiniGPTError
from minigpt.training.state import TrainState

# Spike detection compares each loss with an exponential moving average of the previous ones,
# once it has seen this many steps; skipping more bad steps than this in a row stops the run.
SPIKE_WARMUP_STEPS = 10
LOSS_EMA_DECAY = 0.9
MAX_CONSECUTIVE_SKIPS = 10
# A spike must also rise this many nats above the average: near zero (a model that has learned
# a small fine-tuning set by heart) losses vary by large factors from batch to batch, and
# 0.006 -> 0.02 is noise, not the divergence the guard is for.
MIN_SPIKE_RISE = 0.5


class LossGuard:
    """Judges each step's loss against the run's recent losses (kept in ``state``)."""

    def __init__(
        self, cfg: TrainConfig, state: TrainState, run_dir: Path, log: Callable[[str], None]
    ) -> None:
        self.cfg, self.state, self.run_dir, self.log = cfg, state, run_dir, log
        self.consecutive_skips = 0

    def problem(self, loss: float) -> str:
        """Why this loss must not be trained on ('' if it is fine)."""
        if not math.isfinite(loss):
            return f"loss became {loss}"
        threshold = self.cfg.spike_threshold
        ema = self.state.loss_ema
        warmed_up = ema is not None and self.state.ema_steps >= SPIKE_WARMUP_STEPS
        if threshold and warmed_up and loss > max(threshold * ema, ema + MIN_SPIKE_RISE):
            return (
                f"loss spiked to {loss:.4f}, {loss / ema:.1f}x its recent "
                f"average {ema:.4f} (spike_threshold {threshold:g})"
            )
        return ""

    def accept(self, loss: float) -> None:
        """A good step was applied: it joins the moving average."""
        self.consecutive_skips = 0
        ema = self.state.loss_ema
        decay = LOSS_EMA_DECAY
        self.state.loss_ema = loss if ema is None else decay * ema + (1 - decay) * loss
        self.state.ema_steps += 1

    def reject(self, problem: str) -> None:
        """A bad step was caught: skip it (``on_bad_loss skip``) or stop the run."""
        where = f"{problem} at iteration {self.state.step + 1}"
        if self.cfg.on_bad_loss == "skip" and self.consecutive_skips < MAX_CONSECUTIVE_SKIPS:
            self.state.skipped_steps += 1
            self.consecutive_skips += 1
            self.log(f"warning: {where}; skipped that step (no update applied)")
            return
        good = checkpoint_dirs(self.run_dir)
        kept = f"the last good checkpoint is {good[-1]}" if good else "no checkpoint was written"
        if self.consecutive_skips >= MAX_CONSECUTIVE_SKIPS:
            where = f"{MAX_CONSECUTIVE_SKIPS} bad steps in a row, the last: {where}"
        raise MiniGPTError(
            f"{where}; stopped before applying it ({kept}). Lower --lr (now {self.cfg.lr:g}), "
            "raise --warmup-iters or --spike-threshold, or pass --on-bad-loss skip; then "
            "continue with --resume"
        )
