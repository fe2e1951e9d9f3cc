"""``torch.compile`` with a fallback: a run never dies because the compiler is missing.

torch.compile compiles lazily, at the first forward (and backward) of each mode, so a missing
C compiler, an unsupported Python or an op the compiler cannot handle shows up there, in the
middle of the first training step or evaluation. ``CompileFallback`` runs those first calls
under a guard: on failure it warns once, goes back to the eager model and redoes the call from
the same random state, so the run goes on exactly as an eager run would.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from minigpt.config import RunConfig
from minigpt.errors import MiniGPTError
from minigpt.model.sizing import flops_per_token
from minigpt.runtime import CompileChoice, choose_compile, compile_cache_dir, is_out_of_memory


def compile_choice(config: RunConfig, device: torch.device, tokens_per_step: int) -> CompileChoice:
    """``--compile`` resolved for this run; ``auto`` weighs the run's FLOPs (its training steps
    and evaluations) against the cost of compiling (``runtime.choose_compile``)."""
    t, per_token = config.train, flops_per_token(config.model)
    evals = t.max_iters // max(1, t.eval_interval) + 1
    eval_tokens = evals * 2 * t.eval_iters * t.batch_size * config.model.block_size
    run_flops = per_token * (tokens_per_step * t.max_iters + eval_tokens / 3)  # forward: 1/3
    return choose_compile(t.compile, device, run_flops)


class CompileFallback:
    """The module the training loop calls (``module``): compiled if asked and possible."""

    def __init__(
        self,
        eager: nn.Module,
        enabled: bool,
        log: Callable[[str], None],
        on_fallback: Callable[[], None] = lambda: None,
    ) -> None:
        self.eager = eager
        self.module: Any = eager
        self.log = log
        self.on_fallback = on_fallback  # e.g. drop the half-made gradients of the failed call
        self._ok: set[str] = set()
        if enabled:
            compile_cache_dir()  # compiled kernels persist: a shape compiles once per machine
            try:
                self.module = torch.compile(eager)
            except Exception as e:  # unsupported platform or Python version
                self._fall_back(e)

    @property
    def compiled(self) -> bool:
        return self.module is not self.eager

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.module(*args, **kwargs)

    def guard(self, fn: Callable[[], Any], mode: str) -> Any:
        """Run ``fn``; the first time per mode with a compiled model, fall back on failure."""
        if not self.compiled or mode in self._ok:
            return fn()
        rng = torch.get_rng_state()
        try:
            out = fn()
        except (MiniGPTError, KeyboardInterrupt):
            raise
        except Exception as e:
            if is_out_of_memory(e):  # not compile's fault: the caller reports it
                raise
            self._fall_back(e)
            torch.set_rng_state(rng)
            self.on_fallback()
            return fn()
        self._ok.add(mode)
        return out

    def _fall_back(self, error: Exception) -> None:
        first_line = (str(error).strip().splitlines() or [""])[0][:200]
        self.log(
            f"warning: torch.compile failed ({type(error).__name__}: {first_line}); "
            "training without it (pass --compile false to skip trying)"
        )
        self.module = self.eager
