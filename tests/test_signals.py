"""Ctrl-C and SIGTERM in the middle of a run leave a loadable checkpoint (real subprocesses)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from minigpt.checkpoint import find_checkpoint

SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_mid_run_writes_a_checkpoint(dataset, tmp_path, sig, code):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "minigpt", "train", "--data", str(dataset), "--out-dir", str(run)]
    flags = dict(n_layer=1, n_head=1, n_embd=16, block_size=8, batch_size=2, device="cpu")
    flags.update(max_iters=10**5, log_interval=1, eval_interval=10**5)
    flags.update(checkpoint_interval=10**5, tensorboard="false", sample_tokens=0)
    for name, value in flags.items():
        cmd += ["--" + name.replace("_", "-"), str(value)]
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    lines = []
    deadline = time.time() + 120
    while time.time() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        if line.startswith("iter      3"):
            break
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == code, "".join(lines) + out
    assert f"{signal.Signals(sig).name} received at iteration" in out
    ckpt = find_checkpoint(run)
    assert ckpt.iteration >= 3
    assert ckpt.optimizer_state()["state"][0]["step"].item() == ckpt.iteration
