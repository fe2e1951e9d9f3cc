"""The budget of ``prepare --tokenizer auto``'s probe (``sweep/tokenizer_probe.py``).

A config of its own, like ``sampling.SampleConfig``, so that ``minigpt prepare --help`` can
show its defaults without importing the probe, which imports torch and the trainer.
"""

from __future__ import annotations

from dataclasses import dataclass

from minigpt.errors import MiniGPTError


@dataclass
class ProbeConfig:
    """The probe's budget and its tiny model."""

    steps: int = 200
    probe_bytes: int = 2_000_000
    threads: int = 1
    seed: int = 1337
    n_layer: int = 2
    n_head: int = 2
    n_embd: int = 64
    block_size: int = 64
    batch_size: int = 16
    lr: float = 3e-3

    def check(self) -> None:
        if self.steps < 1:
            raise MiniGPTError(f"probe steps must be at least 1, got {self.steps}")
        if self.probe_bytes < 1000:
            raise MiniGPTError(f"probe bytes must be at least 1000, got {self.probe_bytes}")
        if self.threads < 1:
            raise MiniGPTError(f"probe threads must be at least 1, got {self.threads}")
