"""Shared fixtures: small texts, prepared datasets and tiny configs that train in seconds."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from minigpt.config import load_config
from minigpt.data.prepare import prepare_dataset
from tests.shared_data import SHARED_ENV, shared_folder

# Tiny models gain nothing from intra-op threads, and on a busy 2-core machine the thread
# hand-offs make them many times slower; one thread keeps the suite fast and steady.
torch.set_num_threads(1)

SMALL_TEXT = (
    "To be, or not to be, that is the question:\n"
    "Whether 'tis nobler in the mind to suffer\n"
    "The slings and arrows of outrageous fortune,\n"
    "Or to take arms against a sea of troubles\n"
    "And by opposing end them. To die: to sleep;\n"
) * 40

TINY = dict(
    n_layer=2,
    n_head=2,
    n_embd=32,
    block_size=16,
    batch_size=4,
    max_iters=20,
    eval_interval=10,
    eval_iters=2,
    log_interval=10,
    checkpoint_interval=10,
    warmup_iters=2,
    lr=1e-3,
    dropout=0.0,
    device="cpu",
    sample_tokens=16,
)


@pytest.fixture
def text_file(tmp_path: Path) -> Path:
    path = tmp_path / "small.txt"
    path.write_text(SMALL_TEXT, encoding="utf-8")
    return path


@pytest.fixture
def dataset(tmp_path: Path, text_file: Path) -> Path:
    return prepare_dataset([text_file], tmp_path / "ds", quiet=True)


@pytest.fixture
def tiny_config(tmp_path: Path, dataset: Path):
    def make(**overrides):
        values = {**TINY, "data": str(dataset), "out_dir": str(tmp_path / "run"), **overrides}
        return load_config(overrides=values)

    return make


@pytest.fixture
def shakespeare() -> Path:
    folder = shared_folder()
    path = folder / "data" / "tinyshakespeare.txt" if folder else None
    if path is None or not path.is_file():
        where = path or "no shared folder above the checkout"
        pytest.skip(f"Tiny Shakespeare not found ({where}); set {SHARED_ENV} to the folder")
    return path


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> Path:
    """A tiny model trained once per session, for tests that only read it (e.g. sampling)."""
    from minigpt.training.trainer import train

    root = tmp_path_factory.mktemp("trained")
    text = root / "small.txt"
    text.write_text(SMALL_TEXT, encoding="utf-8")
    data = prepare_dataset([text], root / "ds", quiet=True)
    overrides = {**TINY, "data": str(data), "out_dir": str(root / "run")}
    overrides.update(max_iters=60, eval_interval=60, checkpoint_interval=60, lr=3e-3)
    return train(load_config(overrides=overrides)).run_dir
