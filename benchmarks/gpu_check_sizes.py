"""What ``gpu_check.py`` runs on: each check's sizes, and the data and configs made from them.

``GPU`` holds the real sizes (the presets, the GPT-2 124M generation shape); ``DRY`` runs every
code path at tiny sizes on a CPU for ``--dry-run``. Both checks and their dry run train on the
same synthetic dataset, made in a temporary folder, so the check needs no download. Kept apart
from ``gpu_check.py`` so that the script reads as the checks themselves; like it, this imports
nothing outside the standard library at the top (the bootstrap installs minigpt first).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class Sizes:
    """What the checks run at: the real sizes on a GPU, tiny ones for --dry-run."""

    device: str
    compile: str
    train_overrides: dict
    warmup: int
    steps: int
    memory_overrides: dict
    parity_model: dict
    parity_steps: int
    generation_model: dict
    generation_tokens: int


GPU = Sizes(
    device="cuda",
    compile="true",
    train_overrides={},
    warmup=4,
    steps=20,
    memory_overrides={},
    parity_model=dict(n_layer=6, n_head=6, n_embd=384, block_size=256, batch_size=16),
    parity_steps=50,
    generation_model=dict(vocab_size=50257, block_size=1024, n_layer=12, n_head=12, n_embd=768),
    generation_tokens=200,
)
TINY = dict(n_layer=2, n_head=2, n_embd=32, block_size=32, batch_size=4, vocab_size=512)
DRY = Sizes(
    device="cpu",
    compile="false",  # compiling on a CPU costs minutes; the GPU run compiles
    train_overrides=TINY,
    warmup=1,
    steps=2,
    # a logits-heavy model: big enough for the planner's bound to hold on a CPU too
    memory_overrides=dict(
        n_layer=1, n_head=2, n_embd=16, block_size=32, vocab_size=8192, batch_size=32
    ),
    parity_model=dict(TINY, vocab_size=0),
    parity_steps=6,
    generation_model=dict(vocab_size=512, block_size=64, n_layer=2, n_head=2, n_embd=32),
    generation_tokens=8,
)


def synthetic_dataset(folder: Path) -> Path:
    """A small character dataset; models with a larger vocabulary treat it as padding."""
    from minigpt.data.prepare import prepare_dataset

    text = folder / "text.txt"
    words = ("the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "while",
             "seven", "wizards", "hex")  # fmt: skip
    lines = (" ".join(words[(i * 7 + j) % len(words)] for j in range(12)) for i in range(6000))
    text.write_text("\n".join(lines), encoding="utf-8")
    return prepare_dataset([text], folder / "ds", quiet=True)


def config_for(preset: str | None, data: Path, out: Path, sizes: Sizes, **overrides):
    from minigpt.config import load_config

    base = dict(data=str(data), out_dir=str(out), device=sizes.device, grad_accum=1)
    return load_config(preset, overrides={**base, **overrides})
