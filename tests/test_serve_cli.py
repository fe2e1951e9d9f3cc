"""`minigpt serve` as a user runs it: a process that serves, warns, and stops on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

pytest.importorskip("fastapi")

from minigpt.serve.server import warnings_for  # noqa: E402
from minigpt.serve.settings import ServeConfig, api_key_from_env  # noqa: E402
from tests.serve_helpers import call, free_port, train_chat_ready_run  # noqa: E402


def test_serve_process_answers_then_stops_cleanly_on_sigterm():
    run = train_chat_ready_run()
    port = free_port()
    env = {**os.environ, "MINIGPT_API_KEY": "k1"}
    cmd = [
        sys.executable,
        "-m",
        "minigpt",
        "serve",
        str(run),
        "--port",
        str(port),
        "--device",
        "cpu",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if call(url + "/health")[0] == 200:
                    break
            except OSError:
                pass
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the server did not come up"
            time.sleep(0.1)
        key = {"Authorization": "Bearer k1"}
        body = {"model": "tiny", "prompt": "To be", "max_tokens": 5, "temperature": 0}
        status, answer = call(url + "/v1/completions", "POST", body, key)
        assert status == 200 and answer["usage"]["completion_tokens"] == 5
        assert call(url + "/v1/completions", "POST", body)[0] == 401  # the env key is enforced
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert f"http://127.0.0.1:{port}/" in out and "stopped" in out
    assert "Traceback" not in err


def test_missing_model_is_one_line_error(tmp_path, capsys):
    from minigpt.cli import main

    assert main(["serve", str(tmp_path / "nope"), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("minigpt serve: error:") and len(err.strip().splitlines()) == 1


def test_loud_warning_only_when_exposed_without_key(monkeypatch):
    assert warnings_for(ServeConfig(host="127.0.0.1")) == []
    assert warnings_for(ServeConfig(host="0.0.0.0", api_key="k")) == []
    assert any("NO API KEY" in line for line in warnings_for(ServeConfig(host="0.0.0.0")))
    monkeypatch.setenv("MINIGPT_API_KEY", "from-env")
    assert api_key_from_env(None) == "from-env" and api_key_from_env("flag") == "flag"


def test_demo_folder_serves_its_run_under_the_folder_name(tmp_path):
    from minigpt.serve.registry import load_served

    run = train_chat_ready_run()
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "run").symlink_to(run, target_is_directory=True)
    served = load_served([str(tmp_path / "demo"), f"other={run}"], ServeConfig(device="cpu"))
    assert sorted(served) == ["demo", "other"]
    assert served["demo"].model.config.block_size == 32
