"""minigpt train --log-to wandb|trackio|mlflow, each in its offline mode, read back."""

from __future__ import annotations

import json
import sqlite3

import pytest

from minigpt.cli import main as cli_main
from minigpt.errors import MiniGPTError
from minigpt.extras import available
from minigpt.training.trackers import TRACKERS, flat_config, latest_sample, make_trackers
from minigpt.training.trainer import train

INSTALLED = [name for name in TRACKERS if available(name)]


def test_helpers(tmp_path):
    assert flat_config({"model": {"n_layer": 2}, "x": 1}) == {"model.n_layer": 2, "x": 1}
    (tmp_path / "samples.txt").write_text(
        "=== iter 10 | val 2.0 ===\nab\n\n=== iter 20 | val 1.5 ===\ncd\n\n"
    )
    assert latest_sample(tmp_path) == "iter 20 | val 1.5 ===\ncd"
    assert latest_sample(tmp_path / "none") is None
    with pytest.raises(MiniGPTError, match="unknown tracker"):
        make_trackers(["tensorboard"])


@pytest.mark.skipif(not INSTALLED, reason="none of wandb, trackio, mlflow is installed")
def test_every_tracker_gets_the_metrics_config_and_samples(tiny_config, tmp_path, monkeypatch):
    # Offline modes: nothing leaves the machine. The three trackers start a database, a
    # service process and a store each (several seconds), so they share one training run.
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DISABLE_GIT", "true")
    monkeypatch.setenv("TRACKIO_DIR", str(tmp_path / "trackio"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    result = train(tiny_config(), callbacks=make_trackers(INSTALLED))
    run = result.run_dir
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in records if r["kind"] == "eval"]
    logs = [r for r in records if r["kind"] == "train"]
    assert len(evals) == 2 and len(logs) == 2

    if "mlflow" in INSTALLED:
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=f"sqlite:///{run.resolve() / 'mlflow.db'}")
        (found,) = client.search_runs([client.get_experiment_by_name("minigpt").experiment_id])
        history = client.get_metric_history(found.info.run_id, "eval/val")
        assert [(m.step, m.value) for m in history] == [(r["iter"], r["val"]) for r in evals]
        assert found.data.params["model.n_layer"] == "2"
        assert found.data.metrics["train/loss"] == pytest.approx(logs[-1]["loss"])
        samples = sorted((run / "mlartifacts").rglob("iter-*.txt"))
        assert [p.name for p in samples] == ["iter-0000010.txt", "iter-0000020.txt"]

    if "trackio" in INSTALLED:
        db = sqlite3.connect(tmp_path / "trackio" / "minigpt.db")
        rows = [
            (step, json.loads(blob))
            for step, blob in db.execute("select step, metrics from metrics")
        ]
        vals = [(step, m["eval/val"]) for step, m in rows if "eval/val" in m]
        assert vals == [(r["iter"], pytest.approx(r["val"])) for r in evals]
        (config,) = db.execute("select config from configs").fetchone()
        assert json.loads(config)["model.n_layer"] == 2

    if "wandb" in INSTALLED:
        (log,) = (run / "wandb").glob("offline-run-*/run-*.wandb")
        data = log.read_bytes()  # protobuf records: keys and JSON values appear verbatim
        assert b"eval/val" in data and json.dumps(evals[-1]["val"]).encode() in data
        tables = sorted((run / "wandb").glob("offline-run-*/files/media/table/samples_*.json"))
        assert len(tables) == 2


def test_cli_refuses_an_unknown_tracker(capsys):
    with pytest.raises(SystemExit):
        cli_main(["train", "--log-to", "nope"])
    assert "invalid choice" in capsys.readouterr().err
