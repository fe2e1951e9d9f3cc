import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minigpt.data.tokenizer import (
    EOT,
    BPETokenizer,
    CharTokenizer,
    GPT2Tokenizer,
    inspect_text,
    load_tokenizer,
)
from minigpt.errors import MiniGPTError

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


def test_ids_past_the_vocabulary_decode_to_nothing():
    # A model whose vocab_size exceeds the tokenizer's (--preset course-100m on a char dataset)
    # samples its padding rows before it has learned anything; sampling must not crash.
    tok = CharTokenizer.train(["abc"], unknown="unk")
    assert tok.decode([0, 3, 4, 31999, 2]) == "a<unk>c"
    assert CharTokenizer.train(["abc"]).decode([0, 3, 1]) == "ab"
    assert tok.decode([-1, 0, -4, 2]) == "ac"  # not chars[-1]: a negative id is no character


def test_bpe_ids_outside_the_vocabulary_decode_to_nothing(bpe):
    ids = bpe.encode("hello world")
    noise = [-1, bpe.vocab_size, 2**32, -(2**40)]  # tokenizers' u32 ids overflowed on these
    assert bpe.decode(noise[:2] + ids + noise[2:]) == "hello world"


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


# --- byte-level BPE ---------------------------------------------------------------------------

AZERBAIJANI = (
    "Azərbaycan dili Azərbaycan Respublikasının dövlət dilidir. "
    "Bu gün hava çox gözəldir və uşaqlar parkda oynayırlar. "
    "Müəllim tələbələrə yeni mövzunu izah etdi, onlar isə diqqətlə qulaq asdılar. "
    "Şəhərin küçələrində insanlar gəzir, mağazalar açıqdır. "
    "İşıqlı günəşli səhər hamının əhval-ruhiyyəsini yüksəldir. "
    "Kitab oxumaq biliklərimizi artırır və dünyagörüşümüzü genişləndirir. "
    "Gələcəkdə süni intellekt təhsil sahəsində böyük rol oynayacaq. "
)
MIXED = (
    AZERBAIJANI
    + "Привет, как дела? Сегодня хорошая погода, и мы гуляем в парке. "
    + "日本語のテキストです。東京は大きな都市です。 "
    + "Emoji 😀👍🏽🇦🇿 and combining e\u0301 a\u0308 ",
)


def corpus() -> list[str]:
    docs = []
    sentences = [s for text in MIXED for s in text.split(". ")]
    for i in range(60):
        docs.append(". ".join(sentences[(i + j) % len(sentences)] for j in range(5)))
    return docs


@pytest.fixture(scope="module")
def bpe() -> BPETokenizer:
    return BPETokenizer.train(corpus(), vocab_size=600)


SCRIPTS = {
    "azerbaijani": "abcçdeəfgğhxıijkqlmnoöprsştuüvyzAƏIİÖÜŞÇĞ .,",
    "cyrillic": "абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВ .,",
    "cjk": "日本語中文字漢東京大都市の是한국어 。",
    "emoji": "😀👍🏽🇦🇿❤️\u200d🔥 ",
    "combining": "aeo\u0301\u0308\u0327\u0323\u20dd ",
}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.one_of(st.text(), *(st.text(alphabet=a) for a in SCRIPTS.values())))
def test_bpe_round_trips_any_text_with_the_trained_ids(bpe, text):
    ids = bpe.encode(text)
    assert bpe.decode(ids) == text
    assert ids == bpe.hf.encode(text, add_special_tokens=False).ids  # tiktoken == tokenizers
    assert bpe.encode_array(text).tolist() == ids


@settings(max_examples=100, deadline=None)
@given(text=st.text(min_size=1))
def test_char_round_trips_any_text(text):
    tok = CharTokenizer.train([text])
    assert tok.decode(tok.encode(text)) == text


def test_bpe_ids_match_the_trained_tokenizer_on_a_corpus(bpe):
    docs = corpus()
    assert bpe.fast
    assert bpe.encode_batch(docs) == [e.ids for e in bpe.hf.encode_batch(docs)]


def test_bpe_special_token_and_vocab(bpe):
    assert bpe.vocab_size == 600
    assert bpe.eot_id == bpe.special_tokens[EOT]
    assert bpe.decode([bpe.eot_id]) == EOT
    # text that spells the special token is ordinary text, never the token itself
    assert bpe.eot_id not in bpe.encode(f"a{EOT}b")
    assert bpe.decode(bpe.encode(f"a{EOT}b")) == f"a{EOT}b"


def test_azerbaijani_needs_far_fewer_tokens_than_characters(bpe):
    paragraph = (
        "Müəllim tələbələrə yeni mövzunu izah etdi. Bu gün hava çox gözəldir. "
        "Kitab oxumaq biliklərimizi artırır. Azərbaycan dili dövlət dilidir."
    )
    n = len(bpe.encode(paragraph))
    assert n < 0.4 * len(paragraph)


def test_bpe_save_and_load_is_a_tokenizers_file(tmp_path, bpe):
    from tokenizers import Tokenizer as HFTokenizer

    path = bpe.save(tmp_path)
    loaded = load_tokenizer(tmp_path)
    assert isinstance(loaded, BPETokenizer) and loaded.fast
    assert loaded.fingerprint() == bpe.fingerprint()
    assert HFTokenizer.from_file(str(path)).encode(AZERBAIJANI).ids == bpe.encode(AZERBAIJANI)


def test_other_tokenizers_files_are_encoded_by_tokenizers(tmp_path):
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import models, pre_tokenizers, trainers

    hf = HFTokenizer(models.BPE(unk_token="[UNK]"))
    hf.pre_tokenizer = pre_tokenizers.Whitespace()
    hf.train_from_iterator(corpus(), trainers.BpeTrainer(vocab_size=300, special_tokens=["[UNK]"]))
    (tmp_path / "tokenizer.json").write_text(hf.to_str())
    tok = load_tokenizer(tmp_path)
    assert isinstance(tok, BPETokenizer) and not tok.fast
    assert tok.encode("Bu gün hava") == hf.encode("Bu gün hava").ids


def test_vocab_size_too_small_or_too_large():
    with pytest.raises(MiniGPTError, match="vocab size 200 is too small.*at least 257"):
        BPETokenizer.train(["abc"], vocab_size=200)
    with pytest.raises(MiniGPTError, match=r"more than this text can teach.*--vocab-size \d+"):
        BPETokenizer.train(["abc abc abd"], vocab_size=5000)


def test_inspect_shows_the_pieces(bpe):
    report = inspect_text(bpe, "Azərbaycan dili")
    assert "15 characters, 16 bytes" in report
    pieces = bpe.pieces("Azərbaycan dili")
    assert "".join(pieces) == "Azərbaycan dili"
    assert "|" + "|".join(pieces) + "|" in report


def test_bpe_pieces_show_partial_characters_as_bytes():
    tok = BPETokenizer.train(["ab ab ab"], vocab_size=258)
    assert tok.pieces("ə") == ["<0xC9>", "<0x99>"]


def test_corrupted_bpe_file(tmp_path):
    (tmp_path / "tokenizer.json").write_text(json.dumps({"model": {"type": "Nope"}}))
    with pytest.raises(MiniGPTError, match="not a valid tokenizers file"):
        load_tokenizer(tmp_path)


def test_gpt2_needs_tiktoken_files_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    with pytest.raises(MiniGPTError, match="gpt2 tokenizer is not available offline"):
        GPT2Tokenizer()
