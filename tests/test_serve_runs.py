"""The runs dashboard's API: finds runs, reads their files, never leaves the runs folder."""

from __future__ import annotations

import json
import os

import pytest

pytest.importorskip("fastapi")

from minigpt.serve.runs import discover, read_metrics  # noqa: E402
from tests.serve_helpers import call, live_server, train_chat_ready_run  # noqa: E402


def test_discover_finds_nested_runs_and_skips_links_outside(tmp_path):
    (tmp_path / "runs" / "a").mkdir(parents=True)
    (tmp_path / "runs" / "a" / "metrics.jsonl").write_text("")
    (tmp_path / "runs" / "sweep" / "trial-1").mkdir(parents=True)
    (tmp_path / "runs" / "sweep" / "trial-1" / "config.toml").write_text("")
    (tmp_path / "runs" / "notes").mkdir()
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "metrics.jsonl").write_text("")
    os.symlink(tmp_path / "outside", tmp_path / "runs" / "escape")
    assert sorted(discover(tmp_path / "runs")) == ["a", "sweep/trial-1"]
    assert discover(tmp_path / "missing") == {}


def test_read_metrics_thins_train_points_keeps_evals_and_skips_torn_lines(tmp_path):
    path = tmp_path / "metrics.jsonl"
    lines = [json.dumps({"kind": "train", "iter": i, "loss": 1.0}) for i in range(1, 101)]
    lines.insert(50, json.dumps({"kind": "eval", "iter": 50, "val": 2.0}))
    path.write_text("\n".join(lines) + '\n{"kind": "tra')
    train, evals = read_metrics(path, max_points=10)
    assert len(train) <= 11 and train[0]["iter"] == 1 and train[-1]["iter"] == 100
    assert evals == [{"kind": "eval", "iter": 50, "val": 2.0}]


def test_runs_api_serves_a_trained_run():
    run = train_chat_ready_run()
    with live_server([], runs=run.parent) as server:
        status, listing = call(server + "/api/runs")
        assert status == 200 and [r["id"] for r in listing["runs"]] == ["tiny"]
        status, detail = call(server + "/api/runs/tiny")
        assert status == 200
        assert [e["iter"] for e in detail["evals"]] == [40, 80]
        assert detail["train"][-1]["iter"] == 80
        assert "block_size = 32" in detail["config"]
        assert detail["checkpoints"] and detail["checkpoints"][-1]["iteration"] == 80
        assert detail["evals"][-1]["val_bpb"] > 0
        status, models = call(server + "/v1/models")
        assert status == 200 and models["data"] == []  # --runs alone: a dashboard, no models


def test_runs_api_without_runs_folder_is_404():
    run = train_chat_ready_run()
    with live_server([str(run)], runs=None) as server:
        status, answer = call(server + "/api/runs")
        assert status == 404 and "--runs" in answer["error"]["message"]
