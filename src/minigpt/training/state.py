"""Where a run stands: ``TrainState``, saved in every checkpoint, and ``TrainResult``.

The weights, optimizer moments, gradient scaler and random generators are saved by
``checkpoint.py``; ``TrainState`` is the rest of what a resumed run needs to continue exactly
where the original was: the step, the best val loss so far, the eval history, the loss guard's
moving average and the early-stopping count. It round-trips through the ``state.json`` of a
checkpoint under the same keys older versions wrote, so their checkpoints keep resuming.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from minigpt.evaluation.evaluate import perplexity


@dataclass
class TrainState:
    """The progress of one run, apart from tensors; the trainer's only mutable bookkeeping."""

    step: int = 0
    best_val_loss: float = math.inf
    history: list[dict[str, Any]] = field(default_factory=list)
    # the loss guard's exponential moving average of the loss, over ``ema_steps`` steps
    loss_ema: float | None = None
    ema_steps: int = 0
    skipped_steps: int = 0
    evals_since_best: int = 0
    # where the weights first came from (fine-tuning); kept across resumes for the record
    init_from: str | None = None

    def record_eval(self, record: dict[str, Any]) -> bool:
        """Add an evaluation to the history; True when its val loss is a new best."""
        improved = record["val"] < self.best_val_loss
        self.best_val_loss = min(self.best_val_loss, record["val"])
        self.evals_since_best = 0 if improved else self.evals_since_best + 1
        self.history.append(record)
        return improved

    def to_checkpoint(self) -> dict[str, Any]:
        """The entries of ``state.json`` this object owns (the step is its ``iteration``)."""
        return {
            "best_val_loss": self.best_val_loss,
            "history": self.history,
            "init_from": self.init_from,
            "loss_ema": self.loss_ema,
            "ema_steps": self.ema_steps,
            "skipped_steps": self.skipped_steps,
            "evals_since_best": self.evals_since_best,
        }

    @classmethod
    def from_checkpoint(
        cls, iteration: int, state: dict[str, Any], init_from: str | None = None
    ) -> TrainState:
        """The state a checkpoint recorded; keys that older versions did not write default.

        ``init_from`` is used when the checkpoint predates recording it.
        """
        return cls(
            step=iteration,
            best_val_loss=state.get("best_val_loss", math.inf),
            history=state.get("history", []),
            loss_ema=state.get("loss_ema"),
            ema_steps=state.get("ema_steps", 0),
            skipped_steps=state.get("skipped_steps", 0),
            evals_since_best=state.get("evals_since_best", 0),
            init_from=state.get("init_from", init_from),
        )


@dataclass
class TrainResult:
    run_dir: Path
    iterations: int
    train_loss: float
    val_loss: float
    best_val_loss: float
    seconds: float
    tokens_per_second: float
    history: list[dict[str, Any]] = field(default_factory=list)
    tokens_seen: int = 0
    best_val_bpb: float = float("nan")
    peak_memory: int = 0
    mfu: float | None = None
    skipped_steps: int = 0
    stop_reason: str = ""

    @property
    def best_val_perplexity(self) -> float:
        return perplexity(self.best_val_loss)
