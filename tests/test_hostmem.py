"""RAM checks: what is available (MemAvailable, cgroup limits), and the refusals of train,
sample, chat, eval and serve when their estimated peak exceeds it (issue 19)."""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from minigpt import hostmem
from minigpt.checkpoint import Checkpoint
from minigpt.cli import main
from minigpt.data.dataset import Dataset
from minigpt.errors import MiniGPTError
from minigpt.evaluation.evaluate import evaluate_tokens
from minigpt.inference.batching import BatchEngine
from minigpt.inference.generate import generate_samples, generate_text
from minigpt.inference.memory import eval_bytes, generation_bytes, kv_cache_bytes
from minigpt.interop import hf_import
from minigpt.interop.loader import load_model
from minigpt.model.sizing import LOAD_BYTES_PER_PARAM, param_breakdown
from minigpt.training import setup
from minigpt.training.memcheck import training_peak
from minigpt.training.memprobe import MALLOC_ENV
from minigpt.training.trainer import Trainer
from tests.conftest import SMALL_TEXT
from tests.test_cli import TINY_FLAGS

MiB = 1024**2


@pytest.fixture
def ram(monkeypatch):
    """Pretend this machine has ``ram(n)`` bytes available (nothing is allocated)."""
    monkeypatch.delenv(hostmem.NO_CHECK_ENV, raising=False)

    def set_available(n: int) -> None:
        monkeypatch.setattr(hostmem, "available_ram", lambda: n)

    return set_available


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_cgroup_v2_limit_counts_every_ancestor(tmp_path):
    root = tmp_path / "cg"
    _write(root / "cgroup.controllers", "memory")
    _write(tmp_path / "self", "0::/box/job\n")
    _write(root / "box" / "memory.max", str(8 * MiB))
    _write(root / "box" / "memory.current", str(5 * MiB))
    _write(root / "box" / "memory.stat", f"anon 1\ninactive_file {1 * MiB}\n")
    _write(root / "box" / "job" / "memory.max", "max")  # no limit of its own
    _write(root / "box" / "job" / "memory.current", str(4 * MiB))
    room = hostmem.cgroup_room(root, tmp_path / "self")
    assert room == 8 * MiB - 5 * MiB + 1 * MiB  # the parent's limit, cache reclaimable
    _write(tmp_path / "self", "0::/\n")  # a cgroup namespace: the group is the root
    assert hostmem.cgroup_room(root, tmp_path / "self") is None  # no memory.max at the root


def test_cgroup_v1_limit_and_no_limit(tmp_path):
    group = tmp_path / "cg" / "memory" / "job"
    _write(tmp_path / "self", "4:memory:/job\n1:cpu:/\n")
    _write(group / "memory.usage_in_bytes", str(3 * MiB))
    stat = f"hierarchical_memory_limit {10 * MiB}\ntotal_inactive_file {2 * MiB}\n"
    _write(group / "memory.stat", stat)
    assert hostmem.cgroup_room(tmp_path / "cg", tmp_path / "self") == 9 * MiB
    _write(group / "memory.stat", "hierarchical_memory_limit 9223372036854771712\n")
    assert hostmem.cgroup_room(tmp_path / "cg", tmp_path / "self") is None
    assert hostmem.cgroup_room(tmp_path / "cg", tmp_path / "missing") is None


def test_available_ram_is_the_smaller_of_meminfo_and_the_cgroup(monkeypatch):
    monkeypatch.setattr(hostmem, "_meminfo_available", lambda: 10 * MiB)
    monkeypatch.setattr(hostmem, "cgroup_room", lambda: 4 * MiB)
    assert hostmem.available_ram() == 4 * MiB
    monkeypatch.setattr(hostmem, "cgroup_room", lambda: None)
    assert hostmem.available_ram() == 10 * MiB
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")  # two ranks of a CPU torchrun share it
    assert hostmem.usable_ram() == int(hostmem.HEADROOM * 10 * MiB) // 2
    if sys.platform.startswith("linux"):  # the real reading: a positive number
        monkeypatch.undo()
        assert (
            0 < hostmem.available_ram() <= os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        )


def test_require_ram_is_one_line_and_can_be_switched_off(ram, monkeypatch):
    ram(1000 * MiB)
    hostmem.require_ram(900 * MiB, "x", "y")  # 90 % of what is available: fits
    with pytest.raises(MiniGPTError) as info:
        hostmem.require_ram(901 * MiB, "the job", "try less")
    message = str(info.value)
    assert "\n" not in message
    assert "the job needs about 901.0 MiB of RAM, but only 900.0 MiB is usable" in message
    assert "try less" in message and "--no-memory-check" in message
    monkeypatch.setenv(hostmem.NO_CHECK_ENV, "1")
    hostmem.require_ram(10**15, "the job", "try less")


def test_a_run_that_cannot_fit_is_refused_before_the_model_exists(ram, tiny_config, monkeypatch):
    def no_model(*args, **kwargs):
        raise AssertionError("the model was built")

    config = tiny_config(batch_size=8, grad_accum=2)
    model = dataclasses.replace(config.model, vocab_size=Dataset(config.train.data).vocab_size)
    at_two = training_peak(model, 2, torch.float32, "adamw")
    ram(int(at_two / hostmem.HEADROOM) + 1024)
    monkeypatch.setattr(setup, "GPT", no_model)
    with pytest.raises(MiniGPTError) as info:
        Trainer(config)
    message = str(info.value)
    assert "micro-batch 8 x 16 tokens (fp32) needs about" in message
    assert "try --batch-size 2 --grad-accum 8 (or --batch-size auto)" in message

    # not even one sequence: the largest block that fits (here 8 of 16), or a smaller model
    short = dataclasses.replace(model, block_size=8)
    ram(int(training_peak(short, 1, torch.float32, "adamw") / hostmem.HEADROOM) + 1024)
    with pytest.raises(MiniGPTError, match="not even one sequence fits: try --block-size 8 or"):
        Trainer(tiny_config(block_size=16))
    ram(1000)
    with pytest.raises(MiniGPTError, match="not even a block of one token fits"):
        Trainer(tiny_config())


def test_no_memory_check_lets_the_run_start(ram, tiny_config, capsys):
    ram(1000)
    config = tiny_config(max_iters=1)
    args = ["train", "--data", config.train.data, "--out-dir", config.train.out_dir]
    # the CLI tests' tiny model (on the CPU), then one step of block 8 (later flags win)
    args += [*TINY_FLAGS, "--max-iters", "1", "--eval-iters", "1", "--block-size", "8"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--no-memory-check" in err
    assert main([*args, "--no-memory-check"]) == 0
    assert os.environ[hostmem.NO_CHECK_ENV] == "1"  # what torchrun's ranks inherit


def test_one_check_suggests_each_knob_that_helps(ram, monkeypatch):
    """check_fits, behind the generation, evaluation and serving checks: the largest value of
    each knob that fits (the others as asked), or the fallback when none helps."""
    from minigpt.inference.memory import check_fits

    def cost(big: int, small: int) -> int:
        return big * 1000 + small * 10

    ram(int(5050 / hostmem.HEADROOM))
    assert 5000 <= hostmem.usable_ram() < 5100
    knobs = {"big": "--big", "small": "--small"}
    check_fits(cost, "a job", knobs, "give up", big=4, small=10)  # 4,100 bytes: fits
    with pytest.raises(MiniGPTError, match=r"^a job needs about .*; try --big 4; "):
        check_fits(cost, "a job", knobs, "give up", big=9, small=10)  # no small count helps
    with pytest.raises(MiniGPTError, match=r"; try --big 3 or --small 10[0-9]; "):
        check_fits(cost, "a job", knobs, "give up", big=4, small=200)
    with pytest.raises(MiniGPTError, match=r"; give up; "):
        check_fits(cost, "a job", {"small": "--small"}, "give up", big=9, small=10)
    monkeypatch.setenv(hostmem.NO_CHECK_ENV, "1")
    check_fits(cost, "a job", knobs, "give up", big=9, small=10)


def test_sample_chat_eval_and_serve_refuse_what_cannot_fit(ram, trained_run, text_file, capsys):
    model, tokenizer = load_model(trained_run, device="cpu")
    config = model.config
    loading = int(LOAD_BYTES_PER_PARAM["checkpoint"] * param_breakdown(config).total)
    ram(int(max(loading, generation_bytes(config, 1, 1, 1000)) / hostmem.HEADROOM) + 1024)
    generate_text(model, tokenizer, "", max_new_tokens=1000)  # the budget it was sized for
    with pytest.raises(MiniGPTError, match=r"generating 10,000,000 tokens .* try --max-new-tokens"):
        generate_text(model, tokenizer, "", max_new_tokens=10_000_000)
    assert main(["sample", str(trained_run), "-m", "10000000", "--device", "cpu"]) == 2
    assert "try --max-new-tokens" in capsys.readouterr().err
    ram(int(generation_bytes(config, 1, 1, 1000) / hostmem.HEADROOM) + 1024)
    with pytest.raises(
        MiniGPTError, match=r"for 4 sample\(s\) .* try (--max-new-tokens \d+ or )?--num-samples 1;"
    ):
        generate_samples(model, tokenizer, "", max_new_tokens=1000, num_samples=4)

    ram(int(eval_bytes(config, 3) / hostmem.HEADROOM) + 1024)
    with pytest.raises(
        MiniGPTError, match=r"evaluating batches of \d+ x 16 tokens .* --batch-size 3"
    ):
        shards = [np.asarray(tokenizer.encode_array(text_file.read_text()))]
        evaluate_tokens(model, shards, 1, batch_size=64)
    ram(int(3 * kv_cache_bytes(config, 4) / hostmem.HEADROOM))  # the cache, a prefill
    with pytest.raises(MiniGPTError, match=r"a KV cache of 100 slots .* try --max-batch [1-9];"):
        BatchEngine(model, tokenizer, max_batch=100)


def test_a_model_that_cannot_fit_is_refused_before_its_tensors_are_read(
    ram, trained_run, tmp_path, monkeypatch
):
    def no_read(*args, **kwargs):
        raise AssertionError("the tensors were read")

    model, _ = load_model(trained_run, device="cpu")
    params = param_breakdown(model.config).total
    ram(int(LOAD_BYTES_PER_PARAM["checkpoint"] * params / hostmem.HEADROOM) + 1024)
    load_model(trained_run, device="cpu")  # what it was sized for
    ram(int(LOAD_BYTES_PER_PARAM["checkpoint"] * params / hostmem.HEADROOM) - 1024)
    monkeypatch.setattr(Checkpoint, "model_tensors", no_read)
    with pytest.raises(MiniGPTError, match=r"loading .*ckpt-\d+ \(0.0\dM parameters\) needs"):
        load_model(trained_run, device="cpu")

    pytest.importorskip("transformers")
    from tests.hf_helpers import gpt2_folder

    folder = gpt2_folder(tmp_path / "gpt2", SMALL_TEXT)
    monkeypatch.setattr(hf_import, "read_hf_tensors", no_read)
    with pytest.raises(MiniGPTError, match="loading .*gpt2 .* needs about .* free some memory"):
        load_model(f"hf:{folder}", device="cpu")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="peak RSS is read from /proc")
def test_generation_and_eval_estimates_against_measured_peaks():
    """Real generation and an eval batch in a fresh process (~10 s: a peak of its own, with
    glibc returning freed blocks): the estimate is an upper bound that is not far off. The
    training side is test_planner's measure_peaks test."""
    proc = subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        env={**os.environ, **MALLOC_ENV},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    for name, (measured, estimate) in json.loads(proc.stdout.splitlines()[-1]).items():
        assert measured > 15 * MiB, name  # large enough that the process's noise is small
        assert 0.95 < estimate / measured < 1.6, (name, measured, estimate)


PROBE = """
import gc, json, torch
from torch.nn import functional as F
from minigpt.config import ModelConfig
from minigpt.inference.memory import eval_bytes, generation_bytes
from minigpt.model import GPT
from minigpt.training.memprobe import _peak_rss, _reset_peak_rss, _rss

torch.manual_seed(0)
torch.set_num_threads(1)

def measure(run):
    gc.collect(); _reset_peak_rss(); before = _rss()
    run()
    return _peak_rss() - before

def generation(cfg, batch, prompt, new):
    model = GPT(cfg).eval()
    idx = torch.randint(0, cfg.vocab_size, (batch, prompt))
    list(model.generate_tokens(idx[:1, :4], 2))  # kernels and thread pools set up first
    peak = measure(lambda: list(model.generate_tokens(idx, new, top_p=0.9)))
    return peak, generation_bytes(cfg, batch, prompt, new)

@torch.no_grad()
def evaluation(cfg, batch):
    model = GPT(cfg).eval()
    rows = torch.randint(0, cfg.vocab_size, (batch, cfg.block_size + 1))
    model(rows[:1, :4])
    def run():
        logits, _ = model(rows[:, :-1])
        F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), rows[:, 1:].reshape(-1))
    return measure(run), eval_bytes(cfg, batch)

kv = ModelConfig(vocab_size=256, block_size=512, n_layer=4, n_head=4, n_embd=256)
logits = ModelConfig(vocab_size=32000, block_size=128, n_layer=2, n_head=2, n_embd=64)
ev = ModelConfig(vocab_size=8192, block_size=256, n_layer=2, n_head=4, n_embd=128)
print(json.dumps({
    "generation, KV cache": generation(kv, 8, 256, 8),
    "generation, logits": generation(logits, 16, 100, 8),
    "eval batch": evaluation(ev, 8),
}))
"""
