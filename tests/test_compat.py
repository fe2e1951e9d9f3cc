"""Runs and datasets written before the layout of issue 13 still load.

``fixtures/old-layout`` was written by the flat-module layout (commit 663235a; its README has
the commands): a 1-layer run of 5 steps and its char dataset, with the text that layout sampled,
the loss it evaluated, and the loss after resuming for 2 more steps. Today's code must sample
the same text, evaluate the same loss, resume to the same weights, and read the dataset.
"""

import json
import shutil
from pathlib import Path

import pytest

from minigpt.checkpoint import find_checkpoint
from minigpt.cli import main
from minigpt.data.dataset import Dataset
from minigpt.evaluation.evaluate import evaluate_checkpoint

FIXTURE = Path(__file__).parent / "fixtures" / "old-layout"
PROMPT = "First Citizen:"


@pytest.fixture
def old(tmp_path, monkeypatch):
    """A copy of the fixture as the working folder (its config names `dataset` and `run`)."""
    folder = tmp_path / "old"
    shutil.copytree(FIXTURE, folder)
    monkeypatch.chdir(folder)
    return folder


def recorded(old: Path, name: str) -> dict:
    return json.loads((old / name).read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--temperature", "0"], "greedy.txt"),
        (["--temperature", "1", "--seed", "7"], "sampled.txt"),
    ],
)
def test_old_run_samples_the_recorded_text(old, capsys, flags, expected):
    assert main(["sample", "run", "-m", "60", "--prompt", PROMPT, "--device", "cpu", *flags]) == 0
    assert capsys.readouterr().out == (old / expected).read_text(encoding="utf-8")


def test_old_run_evaluates_to_the_recorded_loss(old):
    result = evaluate_checkpoint("run", "dataset", device="cpu")
    want = recorded(old, "eval.json")
    assert result.tokens == want["tokens"] and result.bytes == want["bytes"]
    assert result.loss == pytest.approx(want["loss"], rel=1e-6)


def test_old_run_resumes_where_it_stopped(old, capsys):
    assert find_checkpoint("run").iteration == 5
    assert main(["train", "--resume", "--out-dir", "run", "--max-iters", "7"]) == 0
    assert "done: 7 iterations" in capsys.readouterr().out
    assert find_checkpoint("run").iteration == 7
    result = evaluate_checkpoint("run", "dataset", device="cpu")
    assert result.loss == pytest.approx(recorded(old, "resumed_eval.json")["loss"], rel=1e-6)


def test_old_dataset_reads(old):
    ds = Dataset("dataset")
    meta = recorded(old, "dataset/meta.json")
    assert ds.vocab_size == meta["tokenizer"]["vocab_size"]
    assert {n: s.tokens for n, s in ds.splits.items()} == {
        n: s["tokens"] for n, s in meta["splits"].items()
    }
    first = ds.splits["train"].shards[0][: len(PROMPT)]
    assert ds.tokenizer().decode(first.tolist()) == PROMPT
