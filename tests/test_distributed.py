"""Data-parallel training on 2 CPU processes (gloo): DDP and FSDP against a plain run.

The launched runs are shared by the tests of this module (each launch costs seconds):
a 2-rank DDP run with grad_accum 1, and a plain run with grad_accum 2 on the same global batch.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.distributed as dist
from safetensors.torch import load_file

from minigpt.checkpoint import checkpoint_dirs
from minigpt.cli import main as cli_main
from minigpt.cli.train import worker_argv
from minigpt.config import ModelConfig
from minigpt.data.prepare import prepare_dataset
from minigpt.errors import MiniGPTError
from minigpt.model import GPT
from minigpt.training.distributed import Distributed
from minigpt.training.launch import launch
from tests.conftest import SMALL_TEXT, TINY
from tests.distributed_worker import train_recording

SRC = Path(__file__).resolve().parents[1] / "src"
WORKER = Path(__file__).with_name("distributed_worker.py")

needs_gloo = pytest.mark.skipif(
    not (dist.is_available() and dist.is_gloo_available()), reason="torch built without gloo"
)


def _python(*args: str) -> subprocess.CompletedProcess:
    """Run python with this checkout's sources, outside any torchrun of the caller."""
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), str(SRC.parent), env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    proc = subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc


def _weights(run: Path, step: int) -> dict[str, torch.Tensor]:
    return load_file(run / "checkpoints" / f"ckpt-{step:07d}" / "model.safetensors")


def _assert_close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], atol: float) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=atol, rtol=0), (k, (a[k] - b[k]).abs().max())


def _torchrun_worker(overrides: dict, out_dir: Path) -> tuple[dict, str]:
    """Launch tests/distributed_worker.py on 2 ranks; its step losses and history, and stdout."""
    out = out_dir / "losses.json"
    out_dir.mkdir()
    proc = _python(
        "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        str(WORKER), json.dumps({**overrides, "out_dir": str(out_dir)}), str(out),
    )  # fmt: skip
    return json.loads(out.read_text()), proc.stdout


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A plain run with grad_accum 2, and a 2-rank DDP run with grad_accum 1."""
    root = tmp_path_factory.mktemp("distributed")
    text = root / "small.txt"
    text.write_text(SMALL_TEXT, encoding="utf-8")
    base = {**TINY, "data": str(prepare_dataset([text], root / "ds", quiet=True))}
    _, ref_result, ref_losses, _ = train_recording(
        {**base, "grad_accum": 2, "out_dir": str(root / "ref")}
    )
    ddp_out, stdout = _torchrun_worker(base, root / "ddp")
    return SimpleNamespace(
        root=root,
        base=base,
        ref=root / "ref",
        ref_losses=ref_losses,
        ref_history=ref_result.history,
        ddp=root / "ddp",
        ddp_out=ddp_out,
        stdout=stdout,
    )


def _copy_up_to(run: Path, dest: Path, step: int) -> Path:
    """A copy of a run folder as if it had been stopped after checkpoint ``step``."""
    shutil.copytree(run, dest)
    for ckpt in checkpoint_dirs(dest):
        if int(ckpt.name.split("-")[1]) > step:
            shutil.rmtree(ckpt)
    return dest


def _assert_same_training(out: dict, run: Path, ref: Path, ref_losses: list, ref_history: list):
    """Step losses within 1e-5 of the plain run's over 20 steps; same evals and weights."""
    losses = out["losses"]
    assert len(losses) == len(ref_losses) == 20
    assert max(abs(a - b) for a, b in zip(losses, ref_losses, strict=True)) < 1e-5
    assert losses[-1] < losses[0]
    for ours, theirs in zip(out["history"], ref_history, strict=True):
        assert ours["iter"] == theirs["iter"]
        assert ours["val"] == pytest.approx(theirs["val"], abs=1e-5)
    _assert_close(_weights(run, 20), _weights(ref, 20), atol=1e-5)


@needs_gloo
def test_two_ranks_match_one_rank_with_accumulation(runs):
    _assert_same_training(runs.ddp_out, runs.ddp, runs.ref, runs.ref_losses, runs.ref_history)


# The modern recipe's model: RoPE buffers, RMSNorm, QK-norm, untied embeddings.
MODERN = dict(bias=False, pos="rope", norm="rmsnorm", qk_norm=True, tie_embeddings=False)


@needs_gloo
def test_fsdp_on_two_ranks_trains_like_one_process_and_its_checkpoint_samples(runs):
    base = {**runs.base, **MODERN}
    _, ref_result, ref_losses, _ = train_recording(
        {**base, "grad_accum": 2, "out_dir": str(runs.root / "modern-ref")}
    )
    out, stdout = _torchrun_worker({**base, "fsdp": True}, runs.root / "fsdp")
    assert "2 ranks (FSDP, gloo)" in stdout
    ref = runs.root / "modern-ref"
    _assert_same_training(out, runs.root / "fsdp", ref, ref_losses, ref_result.history)
    # The same single-device format as a plain run's checkpoint: every command reads it.
    ours = load_file(runs.root / "fsdp/checkpoints/ckpt-0000020/optimizer.safetensors")
    theirs = load_file(ref / "checkpoints/ckpt-0000020/optimizer.safetensors")
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in theirs.items()}
    assert cli_main(["sample", str(runs.root / "fsdp"), "-m", "20", "--device", "cpu"]) == 0


@needs_gloo
def test_only_rank_zero_logs_and_writes_one_checkpoint_per_step(runs):
    names = sorted(p.name for p in (runs.ddp / "checkpoints").iterdir())
    assert names == ["ckpt-0000010", "ckpt-0000020"]  # no leftover .tmp- folders either
    assert json.loads((runs.ddp / "saved-rank1.json").read_text()) == ["None", "None"]
    assert len(json.loads((runs.ddp / "saved-rank0.json").read_text())) == 2
    assert runs.stdout.count("eval     10 |") == 1 and runs.stdout.count("training ") == 1
    assert "2 ranks (DDP, gloo)), 128 tokens per step" in runs.stdout
    state = json.loads((runs.ddp / "checkpoints/ckpt-0000020/state.json").read_text())
    assert state["world_size"] == 2 and state["config"]["train"]["grad_accum"] == 1


@needs_gloo
def test_two_rank_run_resumes_exactly(runs, tmp_path):
    """`minigpt train --nproc 2 --resume` continues from step 10 to the same step-20 weights."""
    run = _copy_up_to(runs.ddp, tmp_path / "run", 10)
    _python("-m", "minigpt", "train", "--resume", "--out-dir", str(run), "--nproc", "2")
    assert [p.name for p in checkpoint_dirs(run)] == ["ckpt-0000010", "ckpt-0000020"]
    _assert_close(_weights(run, 20), _weights(runs.ddp, 20), atol=1e-6)


@needs_gloo
def test_two_rank_run_resumes_on_one_process_with_the_same_global_batch(runs, tmp_path, capsys):
    run = _copy_up_to(runs.ddp, tmp_path / "run", 10)
    _, result, losses, _ = train_recording({**runs.base, "out_dir": str(run)}, resume=True)
    assert "grad_accum 1 -> 2: 1 ranks keep the run's 2 micro-batches per step" in (
        capsys.readouterr().out
    )
    assert max(abs(a - b) for a, b in zip(losses, runs.ref_losses[10:], strict=True)) < 1e-5
    _assert_close(_weights(run, 20), _weights(runs.ref, 20), atol=1e-5)


@needs_gloo
def test_fsdp_resumes_a_ddp_run(runs, tmp_path):
    """FSDP ranks load a plain checkpoint into their shards and carry on the same training."""
    run = _copy_up_to(runs.ddp, tmp_path / "run", 10)
    proc = _python(
        "-m", "minigpt", "train", "--resume", "--out-dir", str(run), "--nproc", "2", "--fsdp"
    )  # fmt: skip
    assert "2 ranks (FSDP, gloo)" in proc.stdout
    assert [p.name for p in checkpoint_dirs(run)] == ["ckpt-0000010", "ckpt-0000020"]
    _assert_close(_weights(run, 20), _weights(runs.ddp, 20), atol=1e-5)


# -- no processes needed -------------------------------------------------------------------


def _ranks(world: int, **kwargs) -> list[Distributed]:
    return [
        Distributed(torch.device("cpu"), rank=r, world_size=world, **kwargs) for r in range(world)
    ]


def test_ranks_read_the_micro_batches_a_single_process_would():
    """4 micro-batches per step, split over 1, 2 or 4 ranks: the same global indices."""
    for world in (1, 2, 4):
        read = [d.micro_index(m, 4 // world) for d in _ranks(world) for m in range(4 // world)]
        assert read == [0, 1, 2, 3]


def test_eval_batches_are_shared_out_in_lockstep():
    shares = [list(d.eval_indices(5)) for d in _ranks(2)]
    assert shares == [[0, 2, 4], [1, 3, 5]]  # index 5 is padding: same count on every rank
    assert sorted(i for s in shares for i in s if i < 5) == [0, 1, 2, 3, 4]
    assert list(_ranks(1)[0].eval_indices(5)) == [0, 1, 2, 3, 4]


def test_resume_on_other_ranks_keeps_the_global_batch():
    state = {"world_size": 2, "config": {"train": {"grad_accum": 3}}}  # 6 micro-batches
    four = Distributed(torch.device("cpu"), world_size=4)
    with pytest.raises(MiniGPTError, match="6 micro-batches.*resume on 1, 2, 3, 6 ranks"):
        four.resume_grad_accum(state, 3)
    three = Distributed(torch.device("cpu"), world_size=3)
    assert three.resume_grad_accum(state, 3) == (2, "grad_accum 3 -> 2: 3 ranks keep "
                                                 "the run's 6 micro-batches per step")  # fmt: skip
    assert three.resume_grad_accum(state, 2) == (2, "")
    accum, note = four.resume_grad_accum(state, 5)  # asked for: a deliberate change
    assert accum == 5 and "from 6 to 20 micro-batches" in note
    assert Distributed(torch.device("cpu")).resume_grad_accum({"config": {}}, 4) == (4, "")


def test_only_rank_zero_gets_a_checkpoint_to_write():
    model = GPT(ModelConfig(vocab_size=10, block_size=4, n_layer=1, n_head=1, n_embd=8))
    optimizer = torch.optim.AdamW(model.parameters())
    main, other = _ranks(2)
    assert main.full_state(model, optimizer) == (model, optimizer)
    assert other.full_state(model, optimizer) == (None, None)


def test_nproc_relaunches_the_same_command(monkeypatch):
    from minigpt.cli import build_parser

    args = build_parser().parse_args(
        ["train", "--preset", "cpu-demo", "--max-iters", "5", "--fsdp", "--resume", "--nproc", "2"]
    )
    assert worker_argv(args) == [
        "train", "--max-iters", "5", "--fsdp", "true", "--preset", "cpu-demo", "--resume"
    ]  # fmt: skip
    with pytest.raises(MiniGPTError, match="at least 1"):
        launch(0, ["train"])
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "0")
    with pytest.raises(MiniGPTError, match="already running under torchrun"):
        launch(2, ["train"])


def test_a_single_process_decides_alone():
    solo = Distributed(torch.device("cpu"))
    assert solo.any(True) and not solo.any(False)
    assert solo.max(7) == 7 and solo.mean(2.5) == 2.5
    assert torch.equal(solo.sum(torch.ones(3)), torch.ones(3))


def test_batch_size_auto_shares_the_planned_batch_out():
    """One device would run 8 x 4 = 32 sequences per step; 2 ranks run 16 each."""
    assert Distributed(torch.device("cpu")).share_batch(8, 4) == (8, 4)
    two = Distributed(torch.device("cpu"), world_size=2)
    two.max = lambda value: value  # what the other rank reports is no smaller
    assert two.share_batch(8, 4) == (8, 2)
    assert two.share_batch(32, 1) == (16, 1)


def test_fsdp_refuses_muon():
    from minigpt.config import load_config

    with pytest.raises(MiniGPTError, match="muon orthogonalises whole matrices"):
        load_config(overrides={"fsdp": True, "optimizer": "muon"})
