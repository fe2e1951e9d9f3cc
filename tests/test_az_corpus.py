"""The Azerbaijani sample corpus (examples/az/) that docs/course/az/ runs on.

minigpt ships it, so it must say where it comes from and under which license, be clean
UTF-8 Azerbaijani (the letters a tokenizer must learn), and prepare with both tokenizers.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from minigpt.cli import main
from minigpt.data.tokenizer import load_tokenizer

CORPUS = Path(__file__).resolve().parents[1] / "examples" / "az" / "hekayeler.txt"


@pytest.fixture(scope="module")
def text() -> str:
    return CORPUS.read_bytes().decode("utf-8")  # strict: invalid bytes raise


def test_header_states_source_and_license(text):
    header = [line for line in text.splitlines()[:12] if line.startswith("#")]
    assert any("written for minigpt" in line for line in header)
    assert any("SPDX-License-Identifier: CC0-1.0" in line for line in header)


def test_size_and_azerbaijani_letters(text):
    size = len(text.encode("utf-8"))
    assert 100_000 <= size < 1_000_000, size
    for letter in "əƏıİşŞğçÇöÖüÜ":
        assert letter in text, letter
    # Azerbaijani Latin only: no Cyrillic and no look-alike letters of other alphabets.
    assert not [c for c in set(text) if "\u0400" <= c <= "\u04ff"]
    assert "ä" not in text and "Ä" not in text


def test_no_duplicate_paragraphs(text):
    paragraphs = [p.strip() for p in text.split("\n\n") if len(p.strip()) > 80]
    assert len(paragraphs) == len(set(paragraphs))


@pytest.mark.parametrize(
    "tokenizer, extra",
    [("char", []), ("bpe", ["--vocab-size", "400"])],
)
def test_prepares_with_minigpt(tmp_path, capsys, tokenizer, extra):
    out = tmp_path / tokenizer
    args = ["prepare", str(CORPUS), "--out", str(out), "--tokenizer", tokenizer, "--workers", "1"]
    assert main([*args, *extra]) == 0
    meta = json.loads((out / "meta.json").read_text())
    train, val = meta["splits"]["train"], meta["splits"]["val"]
    assert train["tokens"] > 8 * val["tokens"] > 0
    # Already clean: nothing for prepare to repair or normalise.
    cleaning = meta["report"]["cleaning"]
    assert cleaning["mojibake_fixed"] == cleaning["nfc_changed"] == 0
    tok = load_tokenizer(out)
    sentence = "Əli İsmayıllıda çörək, şəkərbura və göyərti aldı; Üzeyir Ördəkçi ağlıdır."
    assert tok.decode(tok.encode(sentence)) == sentence
    if tokenizer == "bpe":
        # BPE merges the two-byte Azerbaijani letters and common suffixes: fewer tokens.
        assert train["tokens"] < 0.7 * train["chars"]
