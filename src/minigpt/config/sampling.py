"""How to sample: the settings of ``minigpt sample`` and ``minigpt chat``, with their checks.

A config like the training ones (each field is a flag, with its default and help written once
here), kept in the config package so that everything that needs the defaults (the CLI, the
Hugging Face export's generation config) reads them without importing generation code.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass

from minigpt.config.fields import described
from minigpt.errors import MiniGPTError

# How a loaded model's linear layers run (``model/quantize.py``; the --quantize flag of sample,
# chat, eval and serve); here, not there, so the flag's choices need no torch.
QUANTIZE_CHOICES = ("none", "int8", "int4", "int8-dynamic")


@dataclass(frozen=True)
class SampleConfig:
    """How to sample. Each field is a ``minigpt sample`` flag and a ``minigpt chat`` command."""

    max_new_tokens: int = described(500, "tokens to generate per sample")
    temperature: float = described(0.8, "0 is greedy; 1 samples the model's own distribution")
    top_k: int = described(200, "sample only from the k likeliest tokens (0: no limit)")
    top_p: float = described(1.0, "nucleus: the likeliest tokens holding this probability (1: off)")
    min_p: float = described(0.0, "drop tokens less likely than min_p x the top token (0: off)")
    repetition_penalty: float = described(1.0, "> 1 makes tokens already in the text less likely")
    stop: tuple[str, ...] = described((), "end a sample where one of these strings appears")
    seed: int | None = described(1337, "random seed (none: different samples every run)")
    num_samples: int = described(1, "samples generated together, as one batch")
    use_cache: bool = described(True, "KV cache: run the prompt once, then one token per step")
    context_shift: int = described(
        1, "past block_size, re-run the context every this many tokens (1: exact, slowest)"
    )

    def validate(self, block_size: int | None = None) -> None:
        """Reject values that would fail deep inside torch or silently do nothing useful."""
        for name in ("max_new_tokens", "top_k", "num_samples", "context_shift"):
            value = getattr(self, name)
            try:  # ints and numpy ints; not floats (top_k=float("inf") from Python) or bools
                operator.index(value)
            except TypeError:
                raise MiniGPTError(f"{name} must be a whole number, got {value!r}") from None
            if isinstance(value, bool):
                raise MiniGPTError(f"{name} must be a whole number, got {value!r}")
        if self.max_new_tokens < 0:
            raise MiniGPTError(f"max_new_tokens must be >= 0, got {self.max_new_tokens}")
        # inf and nan come from the command line too (float("inf")): refused here, not
        # turned into a uniform or nan distribution deep inside sampling.
        if not (self.temperature >= 0 and math.isfinite(self.temperature)):
            raise MiniGPTError(
                f"temperature must be a finite number >= 0 (0: greedy, 1: the model's own "
                f"distribution), got {self.temperature}"
            )
        if self.top_k < 0:
            raise MiniGPTError(f"top_k must be >= 0 (0: no limit), got {self.top_k}")
        if not 0.0 < self.top_p <= 1.0:
            raise MiniGPTError(f"top_p must be in (0, 1] (1: off), got {self.top_p}")
        if not 0.0 <= self.min_p <= 1.0:
            raise MiniGPTError(f"min_p must be in [0, 1] (0: off), got {self.min_p}")
        if not (self.repetition_penalty > 0 and math.isfinite(self.repetition_penalty)):
            raise MiniGPTError(
                f"repetition_penalty must be a finite number > 0 (1: off), "
                f"got {self.repetition_penalty}"
            )
        if self.num_samples < 1:
            raise MiniGPTError(f"num_samples must be >= 1, got {self.num_samples}")
        if "" in self.stop:
            raise MiniGPTError("a stop string cannot be empty")
        top = block_size or self.context_shift
        if not 1 <= self.context_shift <= top:
            raise MiniGPTError(
                f"context_shift must be between 1 and block_size ({top}), got {self.context_shift}"
            )
