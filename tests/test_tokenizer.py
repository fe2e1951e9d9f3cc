import numpy as np
import pytest

from minigpt.errors import MiniGPTError
from minigpt.tokenizer import CharTokenizer, load_tokenizer

TEXTS = ["hello world", "Gün təlim İş ğ ç ö ü ı ə", "日本語 😀 e\u0301", "tabs\tand\nnewlines\r\n"]


@pytest.mark.parametrize("text", TEXTS)
def test_char_round_trip(text):
    tok = CharTokenizer.train([text])
    assert tok.decode(tok.encode(text)) == text
    assert tok.vocab_size == len(set(text))


def test_vectorised_encoding_matches_lookup():
    text = "".join(TEXTS)
    tok = CharTokenizer.train([text])
    assert tok.encode(text) == [tok.stoi[c] for c in text]
    assert tok.encode_array("").size == 0


def test_unknown_characters_are_refused_with_their_names():
    tok = CharTokenizer.train(["abc"])
    with pytest.raises(MiniGPTError, match=r"'z' \(U\+007A\)"):
        tok.encode("abz")


def test_unknown_characters_map_to_unk_when_asked():
    tok = CharTokenizer.train(["abc"], unknown="unk")
    ids = tok.encode("abz")
    assert ids[-1] == tok.unk_id == 3
    assert tok.vocab_size == 4
    assert tok.decode(ids) == "ab<unk>"


def test_save_and_load(tmp_path):
    tok = CharTokenizer.train(["hello ə"])
    tok.save(tmp_path)
    loaded = load_tokenizer(tmp_path)
    assert isinstance(loaded, CharTokenizer)
    assert loaded.chars == tok.chars
    assert loaded.fingerprint() == tok.fingerprint()
    assert np.array_equal(loaded.encode_array("hello"), tok.encode_array("hello"))


def test_corrupted_tokenizer_file(tmp_path):
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(MiniGPTError, match="corrupted"):
        load_tokenizer(tmp_path)
