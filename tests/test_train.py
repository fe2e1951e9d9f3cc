import json

import pytest
import torch
from safetensors.torch import load_file

from minigpt.checkpoint import checkpoint_dirs, find_checkpoint
from minigpt.config import TrainConfig
from minigpt.errors import MiniGPTError
from minigpt.optim import lr_at
from minigpt.prepare import prepare_dataset
from minigpt.train import Trainer, train


def test_training_lowers_the_loss_and_writes_a_run(tiny_config, tmp_path):
    result = train(tiny_config(max_iters=60, eval_interval=30, checkpoint_interval=30))
    first, last = result.history[0], result.history[-1]
    assert result.iterations == 60
    assert last["val"] < first["val"] < 4.0
    run = tmp_path / "run"
    assert (run / "config.toml").is_file() and (run / "tokenizer.json").is_file()
    assert [p.name for p in checkpoint_dirs(run)] == ["ckpt-0000030", "ckpt-0000060"]


def test_resume_continues_exactly(tiny_config, tmp_path):
    full = train(tiny_config(out_dir=str(tmp_path / "full")))
    Trainer(tiny_config(out_dir=str(tmp_path / "part"))).run(until=10)
    ckpt = find_checkpoint(tmp_path / "part")
    assert ckpt.iteration == 10
    assert ckpt.optimizer_state()["state"][0]["step"].item() == 10
    resumed = train(tiny_config(out_dir=str(tmp_path / "part")), resume=True)
    assert resumed.iterations == 20
    assert resumed.history == full.history
    a = load_file(tmp_path / "full/checkpoints/ckpt-0000020/model.safetensors")
    b = load_file(tmp_path / "part/checkpoints/ckpt-0000020/model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_existing_run_is_refused_without_resume_or_force(tiny_config):
    train(tiny_config(max_iters=10))
    with pytest.raises(MiniGPTError, match="already holds a run.*--resume.*--force"):
        train(tiny_config(max_iters=10))
    assert train(tiny_config(max_iters=10), force=True).iterations == 10


def test_dataset_with_another_tokenizer_is_refused(tiny_config, tmp_path):
    train(tiny_config(max_iters=10))
    other = tmp_path / "other.txt"
    other.write_text("completely different characters: xyzXYZ 0123456789 " * 50)
    ds2 = prepare_dataset([other], tmp_path / "ds2", quiet=True)
    with pytest.raises(MiniGPTError, match="different tokenizer"):
        train(tiny_config(data=str(ds2), max_iters=20), resume=True)


def test_block_size_larger_than_corpus(tiny_config):
    with pytest.raises(MiniGPTError, match="too few for block_size 100000"):
        train(tiny_config(block_size=100000))


def test_vocab_smaller_than_dataset(tiny_config):
    with pytest.raises(MiniGPTError, match="smaller than the dataset"):
        train(tiny_config(vocab_size=3))


def test_missing_dataset(tiny_config, tmp_path):
    with pytest.raises(MiniGPTError, match="not a prepared dataset"):
        train(tiny_config(data=str(tmp_path / "nowhere")))


def test_corrupted_checkpoint_falls_back_to_an_older_good_one(tiny_config, tmp_path, capsys):
    train(tiny_config())
    newest = checkpoint_dirs(tmp_path / "run")[-1]
    weights = newest / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-10])
    with pytest.raises(MiniGPTError, match="corrupted.*model.safetensors"):
        find_checkpoint(newest)
    assert find_checkpoint(tmp_path / "run").iteration == 10
    assert "skipped 1 bad checkpoint" in capsys.readouterr().out


def test_checkpoint_state_is_plain_json(tiny_config, tmp_path):
    train(tiny_config(max_iters=10))
    state = json.loads((checkpoint_dirs(tmp_path / "run")[-1] / "state.json").read_text())
    assert state["iteration"] == 10
    assert state["config"]["model"]["n_layer"] == 2


def test_learning_rate_schedule():
    cfg = TrainConfig(lr=1.0, min_lr_ratio=0.1, warmup_iters=10, max_iters=110)
    assert lr_at(0, cfg) < lr_at(9, cfg) < 1.0
    assert lr_at(10, cfg) == pytest.approx(1.0)
    assert lr_at(60, cfg) == pytest.approx(0.55)
    assert lr_at(110, cfg) == pytest.approx(0.1)
    assert lr_at(500, cfg) == pytest.approx(0.1)


def test_gradient_accumulation_matches_a_bigger_batch(tiny_config, tmp_path):
    """Two micro-batches of 4 accumulate to the same gradient as their mean."""
    trainer = Trainer(tiny_config(grad_accum=2, grad_clip=0.0))
    x0, y0 = trainer.batch("train", 0, 0)
    x1, y1 = trainer.batch("train", 0, 1)
    model = trainer.model
    _, loss = model(torch.cat([x0, x1]), torch.cat([y0, y1]))
    loss.backward()
    expected = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    for x, y in ((x0, y0), (x1, y1)):
        (model(x, y)[1] / 2).backward()
    for n, p in model.named_parameters():
        assert torch.allclose(p.grad, expected[n], atol=1e-6), n


def test_max_minutes_stops_on_the_clock_with_an_eval_and_a_checkpoint(tiny_config, tmp_path):
    result = train(tiny_config(max_iters=100_000, max_minutes=1e-6))
    assert result.iterations == 1 and result.history == [{"iter": 1, **result.history[0]}]
    assert [p.name for p in checkpoint_dirs(tmp_path / "run")] == ["ckpt-0000001"]


def test_an_exception_from_a_callback_stops_training_and_propagates(tiny_config):
    class Stop(Exception):
        pass

    def stop_at_first_eval(trainer, record):
        raise Stop(record["iter"])

    with pytest.raises(Stop, match="2"):  # how sweep pruning (optuna.TrialPruned) works
        train(tiny_config(eval_interval=2), callbacks=[stop_at_first_eval])
