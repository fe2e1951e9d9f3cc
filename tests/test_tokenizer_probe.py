"""``prepare --tokenizer auto``: the candidates, the choice, the report, and the flag errors."""

import json
import math

import pytest

from minigpt.cli import main
from minigpt.data.dataset import Dataset
from minigpt.data.tokenizer import load_tokenizer
from minigpt.errors import MiniGPTError
from minigpt.sweep.tokenizer_probe import (
    Candidate,
    ProbeScore,
    candidates,
    pick,
    prepare_auto,
    probe_tokenizers,
)

from .test_vocab_check import stories, varied


def score(name: str, bpb: float) -> ProbeScore:
    kind, _, size = name.partition("-")
    return ProbeScore(Candidate(kind, int(size or 0)), bpb)


def test_candidates_are_char_and_bpe_sizes_around_the_suggestion():
    assert [c.name for c in candidates(1_000_000)] == ["char", "bpe-320", "bpe-512", "bpe-1024"]
    assert [c.name for c in candidates(1000)] == ["char", "bpe-320", "bpe-640"]


def test_pick_takes_the_lowest_bits_per_byte():
    scores = [score("char", 1.3), score("bpe-512", 1.1), score("bpe-1024", 2.4)]
    assert pick(scores).name == "bpe-512"
    assert pick([score("char", 1.0), score("bpe-512", 1.0)]).name == "char"  # tie: earlier
    assert pick([score("char", math.nan), score("bpe-512", 3.0)]).name == "bpe-512"
    with pytest.raises(MiniGPTError, match="could not score"):
        pick([score("char", math.nan)])


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(stories(400) + varied(3000), encoding="utf-8")
    return path


def test_every_candidate_is_scored_on_the_same_heldout_text(tmp_path, corpus):
    seen = {}

    def fake(candidate, data, heldout):
        seen[candidate.name] = heldout.read_text(encoding="utf-8")
        tok = load_tokenizer(data)
        assert tok.kind == candidate.kind
        if candidate.kind == "bpe":
            assert tok.vocab_size == candidate.vocab_size
        return ProbeScore(candidate, 1.0 if candidate.name == "bpe-640" else 2.0)

    report = probe_tokenizers([corpus], scorer=fake, quiet=True, split="tail")
    assert report.chosen.name == "bpe-640"
    assert list(seen) == ["char", "bpe-320", "bpe-640"]
    assert len(set(seen.values())) == 1 and report.heldout_bytes > 0
    assert seen["char"] in corpus.read_text(encoding="utf-8")  # the tail of the corpus
    with pytest.raises(MiniGPTError, match="chooses vocab_size itself"):
        probe_tokenizers([corpus], scorer=fake, vocab_size=512)


def test_prepare_auto_prepares_the_winner_and_records_the_table(tmp_path, corpus, capsys):
    def fake(candidate, data, heldout):
        return ProbeScore(candidate, {"char": 1.5, "bpe-320": 1.2}.get(candidate.name, 3.0))

    ds = prepare_auto([corpus], tmp_path / "ds", scorer=fake)
    out = capsys.readouterr().out
    assert "bpe-320" in out and "<- chosen" in out and "prepared" in out
    meta = Dataset(ds).meta
    assert meta.tokenizer["kind"] == "bpe" and meta.tokenizer["vocab_size"] == 320
    probe = meta.extra["tokenizer_probe"]
    assert probe["chosen"] == "bpe-320"
    assert [s["bits_per_byte"] for s in probe["scores"]] == [1.5, 1.2, 3.0]
    assert probe["scores"][0]["tokens_per_entry"] is None  # char
    assert probe["scores"][1]["tokens_per_entry"] > 0


def test_auto_end_to_end_picks_the_lowest_measured(tmp_path, corpus, capsys):
    """One real probe with a tiny budget (three candidates, ~3 s each on a loaded 2-core
    machine): the dataset gets the candidate with the lowest bits per byte it printed."""
    ds = tmp_path / "ds"
    args = ["prepare", str(corpus), "--out", str(ds), "--tokenizer", "auto"]
    code = main([*args, "--probe-steps", "10", "--probe-bytes", "20KB", "--workers", "1"])
    out = capsys.readouterr().out
    assert code == 0 and "tokenizer probe: 3 candidates, 10 steps" in out
    probe = json.loads((ds / "meta.json").read_text())["extra"]["tokenizer_probe"]
    best = min(probe["scores"], key=lambda s: s["bits_per_byte"])
    assert probe["chosen"] == best["candidate"]
    assert all(0 < s["bits_per_byte"] < 20 for s in probe["scores"])
    kind = load_tokenizer(ds).kind
    assert kind == best["candidate"].split("-")[0]


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--tokenizer", "auto", "--vocab-size", "512"], "drop --vocab-size"),
        (["--tokenizer", "bpe", "--probe-steps", "10"], "--probe-steps only applies"),
        (["--probe-bytes", "1MB"], "--probe-bytes only applies"),
        (["--tokenizer", "auto", "--format", "chat"], "auto is for text datasets"),
        (["--tokenizer", "auto", "--probe-steps", "0"], "probe steps must be at least 1"),
    ],
)
def test_bad_flag_combinations_are_one_line_errors(tmp_path, corpus, capsys, flags, message):
    code = main(["prepare", str(corpus), "--out", str(tmp_path / "ds"), *flags])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and message in err[0], err
    assert not (tmp_path / "ds").exists()


def test_existing_output_is_refused_before_probing(tmp_path, corpus):
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "x").write_text("keep")

    def never(*_):
        raise AssertionError("probed")

    with pytest.raises(MiniGPTError, match="--force"):
        prepare_auto([corpus], tmp_path / "ds", scorer=never)
