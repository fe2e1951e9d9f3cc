import json
import math

import pytest
import torch
from safetensors.torch import load_file

from minigpt.checkpoint import checkpoint_dirs, find_checkpoint
from minigpt.config import TrainConfig
from minigpt.data.prepare import prepare_dataset
from minigpt.errors import MiniGPTError
from minigpt.extras import available
from minigpt.training.optim import lr_at
from minigpt.training.trainer import Trainer, train


def test_training_lowers_the_loss_and_writes_a_run(tiny_config, tmp_path, capsys):
    result = train(tiny_config(max_iters=60, eval_interval=30, checkpoint_interval=30))
    first, last = result.history[0], result.history[-1]
    assert result.iterations == 60
    assert last["val"] < first["val"] < 4.0
    run = tmp_path / "run"
    assert (run / "config.toml").is_file() and (run / "tokenizer.json").is_file()
    assert [p.name for p in checkpoint_dirs(run)] == ["ckpt-0000030", "ckpt-0000060"]
    # Watching: metrics, plot, samples, summary.
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["iter"] for r in records if r["kind"] == "eval"] == [30, 60]
    assert [r["iter"] for r in records if r["kind"] == "train"] == [10, 20, 30, 40, 50, 60]
    assert records[-1]["val_bpb"] == pytest.approx(last["val_bpb"])
    assert result.tokens_seen == 60 * 4 * 16 == records[-1]["tokens"]
    assert (run / "loss.png").read_bytes()[:4] == b"\x89PNG"
    assert (run / "samples.txt").read_text().count("=== iter") == 2
    if available("tensorboard"):
        assert any((run / "tensorboard").iterdir())
    out = capsys.readouterr().out
    assert "eta " in out and "best val loss" in out and "bits per byte" in out
    assert "peak memory" in out and result.peak_memory > 0
    state = json.loads((checkpoint_dirs(run)[-1] / "state.json").read_text())
    assert state["val_loss"] == last["val"] and state["sampler"]["next_step"] == 60
    assert len(state["rng"]["python"][1]) == 625 and len(state["rng"]["numpy"][1]) == 624


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


def test_existing_run_is_refused_without_resume_or_force(tiny_config, tmp_path):
    train(tiny_config(max_iters=10))
    with pytest.raises(MiniGPTError, match="already holds a run.*--resume.*--force"):
        train(tiny_config(max_iters=10))
    assert train(tiny_config(max_iters=5), force=True).iterations == 5
    assert [p.name for p in checkpoint_dirs(tmp_path / "run")] == ["ckpt-0000005"]


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
    capsys.readouterr()
    assert find_checkpoint(tmp_path / "run").iteration == 10
    err = capsys.readouterr().err
    assert "skipped 1 bad checkpoint" in err and "ckpt-0000010" in err
    with pytest.raises(MiniGPTError, match="newest good checkpoint is .*ckpt-0000010"):
        find_checkpoint(newest)


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


def _nan_at(trainer, bad_steps):
    """Make the forward pass return NaN at the given (0-based) steps."""
    real = trainer.forward_model.module

    def forward(x, y):
        logits, loss = real(x, y)
        if trainer.step in bad_steps:
            loss = loss * float("nan")
        return logits, loss

    trainer.forward_model.module = forward


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tiny_config, tmp_path):
    trainer = Trainer(tiny_config(checkpoint_interval=5))
    _nan_at(trainer, {7})
    with pytest.raises(MiniGPTError, match=r"loss became nan at iteration 8.*ckpt-0000005"):
        trainer.run()
    assert trainer.step == 7
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    assert find_checkpoint(tmp_path / "run").iteration == 5


def test_bad_steps_can_be_skipped(tiny_config):
    trainer = Trainer(tiny_config(on_bad_loss="skip"))
    _nan_at(trainer, {3, 4})
    result = trainer.run()
    assert result.iterations == 20 and result.skipped_steps == 2
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())


def test_loss_spike_is_detected(tiny_config):
    trainer = Trainer(tiny_config(spike_threshold=3.0))
    trainer.state.loss_ema, trainer.state.ema_steps = 1.0, 50
    assert trainer.loss_guard.problem(2.9) == ""
    assert "spiked to 3.5000, 3.5x" in trainer.loss_guard.problem(3.5)
    trainer.state.ema_steps = 5  # too early to judge
    assert trainer.loss_guard.problem(3.5) == ""


def test_early_stopping(tiny_config, monkeypatch):
    trainer = Trainer(tiny_config(eval_interval=2, early_stop=2), watch=False)
    monkeypatch.setattr(trainer, "evaluate", lambda: {"train": 1.0, "val": 1.0})
    result = trainer.run()
    assert result.iterations == 6 and "early stop" in result.stop_reason
    assert find_checkpoint(trainer.run_dir).iteration == 6


def test_init_from_starts_a_new_run_from_the_weights(tiny_config, tmp_path):
    train(tiny_config(max_iters=10), watch=False)
    trainer = Trainer(tiny_config(out_dir=str(tmp_path / "ft")), init_from=tmp_path / "run")
    weights = find_checkpoint(tmp_path / "run").model_tensors()
    assert trainer.step == 0
    assert torch.equal(trainer.model.transformer.wte.weight, weights["transformer.wte.weight"])
    trainer.run(until=10)
    resumed = Trainer(tiny_config(out_dir=str(tmp_path / "ft")), resume=True, watch=False)
    resumed.run()
    # The run remembers where its weights came from, also after a resume.
    assert find_checkpoint(tmp_path / "ft").state["init_from"] == str(tmp_path / "run")
    assert find_checkpoint(tmp_path / "run").state["init_from"] is None


def test_compile_failure_falls_back_with_one_warning(tiny_config, monkeypatch, capsys):
    def broken_compile(model):
        def forward(*args):
            raise RuntimeError("no compiler here\nmore detail")

        return forward

    monkeypatch.setattr(torch, "compile", broken_compile)
    full = train(tiny_config(max_iters=10, compile="true"), watch=False)
    out = capsys.readouterr().out
    assert out.count("torch.compile failed (RuntimeError: no compiler here)") == 1
    eager = train(tiny_config(max_iters=10, out_dir=str(full.run_dir) + "2"), watch=False)
    assert full.history == eager.history  # the fallback redoes the step from the same state


def test_bf16_autocast_on_cpu_stays_close_to_fp32(tiny_config, tmp_path):
    fp32 = Trainer(tiny_config(dtype="float32"), watch=False)
    bf16 = Trainer(tiny_config(dtype="bfloat16", out_dir=str(tmp_path / "bf16")), watch=False)
    assert bf16.dtype == torch.bfloat16 and fp32.dtype == torch.float32
    a, b = fp32.evaluate(), bf16.evaluate()  # same seed: same weights, same batches
    assert a["val"] == pytest.approx(b["val"], abs=0.02)
    ra, rb = fp32.run(), bf16.run()
    assert ra.val_loss == pytest.approx(rb.val_loss, abs=0.05)


def test_float16_uses_a_gradient_scaler_and_checkpoints_it(tiny_config, tmp_path):
    result = train(tiny_config(dtype="float16", max_iters=10), watch=False)
    state = json.loads((checkpoint_dirs(result.run_dir)[-1] / "state.json").read_text())
    assert state["scaler"]["scale"] > 0
    assert math.isfinite(result.val_loss)


def test_resume_truncates_metrics_past_the_checkpoint(tiny_config, tmp_path):
    Trainer(tiny_config()).run(until=10)
    metrics = tmp_path / "run" / "metrics.jsonl"
    with open(metrics, "a") as f:
        f.write(json.dumps({"kind": "train", "iter": 15}) + "\n")
    train(tiny_config(), resume=True)
    iters = [json.loads(line)["iter"] for line in metrics.read_text().splitlines()]
    assert iters == [10, 10, 20, 20]
