"""prepare's vocabulary numbers and its advice when a BPE vocabulary is large for the corpus."""

import json
import random

import numpy as np
import pytest

from minigpt.data.prepare import prepare_dataset
from minigpt.data.tokenizer import CharTokenizer, load_tokenizer
from minigpt.data.vocab_check import (
    MAX_RARE_SHARE,
    MIN_TOKENS_PER_ENTRY,
    RARE_COUNT,
    check_vocabulary,
    learned_ids,
    suggested_vocab_size,
)
from minigpt.errors import MiniGPTError


def stories(n: int, seed: int = 0) -> str:
    """A templated, repetitive corpus: a few sentences filled from short word lists."""
    rng = random.Random(seed)
    names = ["Əli", "Leyla", "Murad", "Aysel", "Tural", "Nigar", "Elvin", "Günay"]
    places = ["bazara", "məktəbə", "parka", "meşəyə", "dənizə", "kəndə"]
    lines = [
        f"Bir gün {rng.choice(names)} {rng.choice(places)} getdi və orada {rng.choice(names)}"
        f" ilə {rng.randint(1, 99)} dəqiqə danışdı."
        for _ in range(n)
    ]
    return "\n".join(lines) + "\n"


def varied(words: int, seed: int = 0) -> str:
    """Many different words with a Zipf-like frequency: no phrase repeats wholesale."""
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyzəüöğışç"
    lexicon = ["".join(rng.choice(letters) for _ in range(rng.randint(2, 9))) for _ in range(3000)]
    weights = [1 / (i + 1) for i in range(len(lexicon))]
    return " ".join(rng.choices(lexicon, weights, k=words)) + "\n"


def report(ds):
    return json.loads((ds / "meta.json").read_text(encoding="utf-8"))["report"]


def test_advice_for_a_large_vocabulary_on_a_repetitive_corpus(tmp_path, capsys):
    (tmp_path / "az.txt").write_text(stories(600), encoding="utf-8")
    ds = prepare_dataset([tmp_path / "az.txt"], tmp_path / "ds", tokenizer="bpe", vocab_size=400)
    out = capsys.readouterr().out
    v = report(ds)["vocabulary"]
    assert v["tokens_per_entry"] < MIN_TOKENS_PER_ENTRY
    kb = json.loads((ds / "meta.json").read_text())["splits"]["train"]["bytes"] / 1e3
    assert v["advice"].startswith(
        f"vocab 400 is large for {kb:.0f} KB: {v['tokens_per_entry']:.0f} tokens per entry, "
        f"{v['rare_entries']} of {v['learned_entries']} learned entries seen <= 3 times"
    )
    assert "--tokenizer char" in v["advice"] and "--tokenizer auto" in v["advice"]
    assert f"advice: {v['advice']}" in out
    assert "training tokens per entry" in out


def test_no_advice_for_a_reasonable_vocabulary(tmp_path, capsys):
    (tmp_path / "text.txt").write_text(varied(30_000), encoding="utf-8")
    ds = prepare_dataset([tmp_path / "text.txt"], tmp_path / "ds", tokenizer="bpe", vocab_size=320)
    out = capsys.readouterr().out
    v = report(ds)["vocabulary"]
    assert v["tokens_per_entry"] >= MIN_TOKENS_PER_ENTRY
    assert v["rare_entries"] <= MAX_RARE_SHARE * v["learned_entries"]
    assert v["advice"] is None and "advice:" not in out


@pytest.mark.parametrize("split", ["tail", "documents"])
def test_counts_are_of_the_training_split(tmp_path, split):
    folder = tmp_path / "docs"
    folder.mkdir()
    for i in range(20):
        (folder / f"{i:02d}.txt").write_text(stories(20, seed=i), encoding="utf-8")
    ds = prepare_dataset([folder], tmp_path / "ds", tokenizer="bpe", vocab_size=300, split=split)
    meta = json.loads((ds / "meta.json").read_text(encoding="utf-8"))
    assert meta["report"]["vocabulary"]["train_tokens"] == meta["splits"]["train"]["tokens"]


def test_char_datasets_have_no_vocabulary_check(tmp_path):
    (tmp_path / "a.txt").write_text(stories(50), encoding="utf-8")
    ds = prepare_dataset([tmp_path / "a.txt"], tmp_path / "ds", quiet=True)
    assert "vocabulary" not in report(ds)
    assert check_vocabulary(CharTokenizer(list("ab")), np.array([5, 5]), 10) is None


def test_rare_entries_counted_among_learned_ones(tmp_path):
    (tmp_path / "a.txt").write_text(stories(200), encoding="utf-8")
    ds = prepare_dataset([tmp_path / "a.txt"], tmp_path / "ds", tokenizer="bpe", vocab_size=300)
    tok = load_tokenizer(ds)
    learned = learned_ids(tok)
    assert len(learned) == tok.vocab_size - 256 - 1  # bytes and <|endoftext|> are not learned
    counts = np.full(tok.vocab_size, 1000)
    counts[learned[:5]] = RARE_COUNT
    counts[learned[5]] = RARE_COUNT + 1
    counts[0:256] = 0  # unused single bytes are not "rare entries"
    check = check_vocabulary(tok, counts, 10**6)
    assert check["rare_entries"] == 5 and check["learned_entries"] == len(learned)
    assert check["tokens_per_entry"] == pytest.approx(counts.sum() / tok.vocab_size, abs=0.1)


def test_suggested_sizes_grow_with_the_corpus():
    sizes = [suggested_vocab_size(n) for n in (10**4, 10**6, 4 * 10**7, 4 * 10**10)]
    assert sizes == sorted(sizes) and all(s % 64 == 0 and s >= 320 for s in sizes)
    assert sizes[1] == 512 and 25_000 < sizes[3] < 40_000


def test_prepare_dataset_refuses_auto_with_a_pointer():
    with pytest.raises(MiniGPTError, match="prepare_auto"):
        prepare_dataset(["x.txt"], "out", tokenizer="auto")
