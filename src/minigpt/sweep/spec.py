"""What a sweep is: its budget per trial and the ``Sweep`` itself (space, base config,
budget, output folder). The runner runs one and the report describes one; both import it
from here, so neither imports the other."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from minigpt.config import RunConfig, apply_overrides, validate
from minigpt.errors import MiniGPTError
from minigpt.sweep.space import SearchSpace

MACHINE_FIELDS = ("data", "out_dir", "device", "dtype", "compile")


@dataclass(frozen=True)
class Budget:
    """How long each trial trains: a number of iterations or of minutes."""

    iters: int | None = None
    minutes: float | None = None

    def overrides(self) -> dict[str, Any]:
        if self.iters is not None:
            return {"max_iters": self.iters, "max_minutes": 0.0}
        return {"max_minutes": self.minutes}

    def __str__(self) -> str:
        if self.iters is not None:
            return f"{self.iters} iterations"
        minutes = self.minutes or 0.0
        return f"{minutes:g} minutes" if minutes >= 1 else f"{minutes * 60:g} seconds"


def parse_budget(text: str | int) -> Budget:
    """``300`` is 300 iterations; ``5m``, ``90s``, ``1.5h`` are wall-clock times per trial."""
    text = str(text).strip().lower()
    if text.isdigit() and int(text) > 0:
        return Budget(iters=int(text))
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|hr)", text)
    if match and float(match.group(1)) > 0:
        scale = {"s": 1 / 60, "sec": 1 / 60, "m": 1, "min": 1, "h": 60, "hr": 60}
        return Budget(minutes=float(match.group(1)) * scale[match.group(2)])
    raise MiniGPTError(
        f"budget '{text}' is neither a number of iterations (e.g. 300) nor a time per trial "
        "(e.g. 5m, 90s, 1h)"
    )


@dataclass
class Sweep:
    """Everything a trial needs: the space, the base config and the budget."""

    space: SearchSpace
    base: RunConfig
    budget: Budget
    out_dir: Path

    def trial_config(self, params: dict[str, Any], number: int) -> RunConfig:
        """The base config with the trial's values; MiniGPTError if the combination is invalid."""
        config = copy.deepcopy(self.base)
        apply_overrides(config, params, f"trial {number}")
        apply_overrides(config, self.budget.overrides(), "--budget")
        config.train.out_dir = str(self.trial_dir(number))
        reason = self.space.violated(config)
        if reason:
            raise MiniGPTError(reason)
        validate(config)
        return config

    def trial_dir(self, number: int) -> Path:
        return self.out_dir / f"trial-{number:04d}"

    def settings(self) -> dict[str, Any]:
        """What must match for a study to be resumed (or joined from another machine)."""
        base = {k: v for s in self.base.to_dict().values() for k, v in s.items()}
        ignored = (*MACHINE_FIELDS, *self.space.params)  # swept values replace the base's
        base = {k: v for k, v in base.items() if k not in ignored}
        return {"space": self.space.to_dict(), "base": base, "budget": str(self.budget)}


# -- one trial -------------------------------------------------------------------------------
