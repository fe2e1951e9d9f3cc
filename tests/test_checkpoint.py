import pickle
import random

import numpy as np
import pytest
import torch

from minigpt.checkpoint import (
    Checkpoint,
    checkpoint_dirs,
    find_checkpoint,
    optimizer_from_flat,
    optimizer_to_flat,
    save_checkpoint,
)
from minigpt.config import ModelConfig
from minigpt.errors import MiniGPTError
from minigpt.model import GPT
from minigpt.training.trainer import Trainer, train


@pytest.fixture
def model():
    return GPT(ModelConfig(vocab_size=11, block_size=8, n_layer=1, n_head=1, n_embd=8))


def test_keeps_the_latest_k_and_the_best(model, tmp_path):
    for it, val in enumerate([3.0, 1.0, 2.0, 2.5, 2.7], start=1):
        save_checkpoint(tmp_path, it, model, None, {"val_loss": val}, keep_last=2)
    assert [p.name for p in checkpoint_dirs(tmp_path)] == [
        "ckpt-0000002",
        "ckpt-0000004",
        "ckpt-0000005",
    ]
    assert find_checkpoint(tmp_path, best=True).iteration == 2
    assert find_checkpoint(tmp_path).iteration == 5


def test_rng_states_round_trip(model, tmp_path):
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    path = save_checkpoint(tmp_path, 1, model, None, {})
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    random.random(), np.random.rand(), torch.rand(1)
    Checkpoint(path).restore_rng()
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_any_optimizer_state_flattens_and_restores(model):
    for opt in (
        torch.optim.AdamW(model.parameters(), lr=0.1),
        torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
        torch.optim.Adam(model.parameters(), lr=torch.tensor(0.01)),
    ):
        x = torch.zeros(1, 4, dtype=torch.long)
        model(x, x)[1].backward()
        opt.step()
        tensors, meta = optimizer_to_flat(opt)
        restored = optimizer_from_flat(tensors, meta)
        opt.load_state_dict(restored)
        assert restored["state"].keys() == opt.state_dict()["state"].keys()


def test_nothing_is_unpickled_and_pickle_files_are_refused(tiny_config, tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("pickle used")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    Trainer(tiny_config(), watch=False).run(until=10)
    assert train(tiny_config(), resume=True, watch=False).iterations == 20
    newest = checkpoint_dirs(tmp_path / "run")[-1]
    for file in newest.glob("*.safetensors"):
        assert file.read_bytes()[8:9] == b"{"  # header length, then the JSON header
    monkeypatch.undo()
    torch.save(torch.nn.Linear(2, 2).state_dict(), newest / "model.safetensors")
    with pytest.raises(MiniGPTError, match="pickle.*can run code.*safetensors"):
        find_checkpoint(newest)
    torch.save({"weights": 1}, tmp_path / "model.pt")
    with pytest.raises(MiniGPTError, match="pickle"):
        find_checkpoint(tmp_path / "model.pt")


def test_every_checkpoint_corrupted(model, tmp_path):
    path = save_checkpoint(tmp_path, 1, model, None, {})
    (path / "state.json").write_text("{not json")
    with pytest.raises(MiniGPTError, match="every checkpoint .* is corrupted.*--force"):
        find_checkpoint(tmp_path)
