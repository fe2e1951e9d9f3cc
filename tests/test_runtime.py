"""runtime.py: the compile choice, the compile cache and the thread count."""

from __future__ import annotations

import os

import torch

from minigpt.config import load_config
from minigpt.runtime import (
    CPU_COMPILE_SAVING,
    CPU_COMPILE_SECONDS,
    CPU_TRAIN_FLOPS,
    choose_compile,
    compile_cache_dir,
    physical_cores,
    use_physical_cores,
)
from minigpt.training.compile import compile_choice

CPU, CUDA, MPS = torch.device("cpu"), torch.device("cuda"), torch.device("mps")
# the eager run time at which compiling on a CPU starts to pay
BREAK_EVEN = CPU_COMPILE_SECONDS / CPU_COMPILE_SAVING * CPU_TRAIN_FLOPS


def test_explicit_choices_are_kept():
    assert choose_compile("true", CPU, 1.0).enabled
    assert not choose_compile("false", CUDA, 1e30).enabled
    assert choose_compile("false", CUDA).reason == "compile false"


def test_auto_compiles_cuda_always_and_cpu_runs_long_enough_to_repay_it():
    assert choose_compile("auto", CUDA).enabled
    assert not choose_compile("auto", MPS, 1e30).enabled
    short, long = (
        choose_compile("auto", CPU, 0.5 * BREAK_EVEN),
        choose_compile("auto", CPU, 2 * BREAK_EVEN),
    )
    assert not short.enabled and short.reason.startswith("compile auto: off (")
    assert long.enabled and long.reason.startswith("compile auto: on (")
    assert "min eager on this CPU" in long.reason


def test_a_runs_compile_choice_counts_its_steps():
    def choice(**train):
        config = load_config(preset="cpu-demo", overrides={"vocab_size": 65, **train})
        tokens = config.train.batch_size * config.model.block_size
        return compile_choice(config, CPU, tokens)

    assert not choice(max_iters=100).enabled  # seconds of training: not worth a compile
    assert choice(max_iters=200_000).enabled  # hours: it is
    assert not choice(max_iters=200_000, compile="false").enabled


def test_compile_cache_dir_persists_and_respects_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert compile_cache_dir() == str(tmp_path / "minigpt" / "inductor")
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "minigpt" / "inductor")
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", "/somewhere/else")
    assert compile_cache_dir() == "/somewhere/else"


def test_threads_follow_physical_cores_unless_chosen(monkeypatch):
    cores = physical_cores()
    assert 1 <= cores <= (os.cpu_count() or 1)
    before = torch.get_num_threads()
    try:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        torch.set_num_threads(os.cpu_count() or 1)  # torch's default: one per logical CPU
        assert use_physical_cores() == min(os.cpu_count() or 1, cores)
        torch.set_num_threads(1)  # a choice already made (as this suite's conftest does)
        assert use_physical_cores() == 1
    finally:
        torch.set_num_threads(before)
