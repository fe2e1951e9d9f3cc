"""The numbers an evaluation reports: loss, perplexity and bits per byte."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass


@dataclass
class EvalResult:
    loss: float
    tokens: int
    bytes: int
    nats: float

    @property
    def perplexity(self) -> float:
        return perplexity(self.loss)

    @property
    def bits_per_byte(self) -> float:
        return self.nats / self.bytes / math.log(2) if self.bytes else float("nan")

    def to_dict(self) -> dict[str, float]:
        return {**asdict(self), "perplexity": self.perplexity, "bits_per_byte": self.bits_per_byte}


def perplexity(loss: float) -> float:
    """exp(loss), without overflowing for a diverged run."""
    return math.exp(loss) if loss < 700 else float("inf")


def bits_per_byte(loss: float, tokens: int, nbytes: int) -> float:
    """Bits per byte from a mean loss in nats per token over ``tokens`` tokens of ``nbytes``."""
    return loss * tokens / nbytes / math.log(2) if nbytes else float("nan")
