"""Why a run stops before ``max_iters``: the time limit, early stopping and SIGINT/SIGTERM.

Under torchrun every rank must stop at the same step, or the collectives of the next step
stop matching and the run hangs; so each rule is decided for all ranks together (one small
all-reduce), and a plain run pays nothing for it.
"""

from __future__ import annotations

import math
import time

from minigpt.config import TrainConfig
from minigpt.training.distributed import Distributed
from minigpt.training.signals import StopSignals


class StopRules:
    """``--max-minutes``, ``--early-stop`` and the stop signals of one run."""

    def __init__(self, cfg: TrainConfig, dist: Distributed) -> None:
        self.cfg, self.dist = cfg, dist
        self.signals = StopSignals()  # entered while the loop runs
        self.deadline = math.inf

    def start(self, now: float) -> None:
        """The clock of ``--max-minutes`` starts (again, when a run is resumed)."""
        minutes = self.cfg.max_minutes
        self.deadline = now + minutes * 60 if minutes > 0 else math.inf

    def out_of_time(self) -> str:
        """Why to finish at this step ('' to go on): the time limit is reached on any rank."""
        if self.deadline == math.inf or not self.dist.any(time.time() >= self.deadline):
            return ""
        return f"time limit of {self.cfg.max_minutes:g} min reached"

    def early_stop(self, evals_since_best: int) -> str:
        """Why to stop ('' to go on): ``early_stop`` evaluations in a row without a new best."""
        patience = self.cfg.early_stop
        if not patience or evals_since_best < patience:
            return ""
        return f"early stop: val loss has not improved for {patience} evaluations"

    def signal(self) -> int | None:
        """SIGINT or SIGTERM, if any rank has received one."""
        self.signals.received = self.dist.max(self.signals.received or 0) or None
        return self.signals.received
