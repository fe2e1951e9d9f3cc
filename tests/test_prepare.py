import json

import numpy as np
import pytest

from minigpt.data.dataset import Dataset, batch_rng
from minigpt.data.prepare import prepare_dataset
from minigpt.data.tokenizer import load_tokenizer
from minigpt.errors import MiniGPTError

from .conftest import SMALL_TEXT


def test_bin_files_equal_encoded_text(dataset):
    tok = load_tokenizer(dataset)
    meta = json.loads((dataset / "meta.json").read_text())
    split_at = int(len(SMALL_TEXT) * 0.9)
    for name, text in (("train", SMALL_TEXT[:split_at]), ("val", SMALL_TEXT[split_at:])):
        ids = np.fromfile(dataset / f"{name}.bin", dtype="<u2")
        assert ids.tolist() == tok.encode(text)
        assert meta["splits"][name]["tokens"] == len(ids)
        assert meta["splits"][name]["chars"] == len(text)
    assert meta["dtype"] == "uint16"
    assert meta["tokenizer"]["kind"] == "char"
    assert meta["tokenizer"]["vocab_size"] == tok.vocab_size
    assert meta["sources"][0]["bytes"] == len(SMALL_TEXT.encode())
    assert len(meta["sources"][0]["sha256"]) == 64
    assert meta["minigpt_version"] and meta["created"]


def test_folder_input_and_val_fraction(tmp_path):
    folder = tmp_path / "texts"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("first file " * 50)
    (folder / "sub" / "b.md").write_text("second file " * 50)
    (folder / "skip.bin").write_bytes(b"\x00\x01")
    out = prepare_dataset([folder], tmp_path / "ds", val_fraction=0.25, quiet=True)
    meta = json.loads((out / "meta.json").read_text())
    assert len(meta["sources"]) == 2
    total = meta["splits"]["train"]["chars"] + meta["splits"]["val"]["chars"]
    assert meta["splits"]["val"]["chars"] == total - int(total * 0.75)


def test_batches_are_windows_of_the_data(dataset):
    ds = Dataset(dataset)
    x, y = ds.get_batch("train", 4, 8, batch_rng(1, "train", 0))
    assert x.shape == y.shape == (4, 8)
    assert (x[:, 1:] == y[:, :-1]).all()
    again, _ = ds.get_batch("train", 4, 8, batch_rng(1, "train", 0))
    assert (x == again).all()
    other, _ = ds.get_batch("train", 4, 8, batch_rng(1, "train", 1))
    assert not (x == other).all()


def test_uint32_for_large_vocabularies():
    from minigpt.data.meta import token_dtype

    assert token_dtype(65536) == np.dtype("<u2")
    assert token_dtype(65537) == np.dtype("<u4")


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: None, "does not exist"),
        (lambda p: p.write_text("   \n"), "is empty"),
        (
            lambda p: p.write_bytes(b"abc\xff\xfedef"),
            r"not valid utf-8 \(byte offset 3\).*--encoding",
        ),
        (lambda p: p.write_text("a"), "corpus too small"),
    ],
)
def test_bad_inputs(tmp_path, setup, message):
    path = tmp_path / "in.txt"
    setup(path)
    with pytest.raises(MiniGPTError, match=message):
        prepare_dataset([path], tmp_path / "ds", quiet=True)
    assert not (tmp_path / "ds").exists()
    assert not list(tmp_path.glob(".ds*"))


def test_folder_without_text_files(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(MiniGPTError, match="no text files"):
        prepare_dataset([tmp_path / "empty"], tmp_path / "ds", quiet=True)


def test_other_encoding(tmp_path):
    path = tmp_path / "latin.txt"
    path.write_bytes("café crème brûlée ".encode("latin-1") * 20)
    out = prepare_dataset([path], tmp_path / "ds", encoding="latin-1", quiet=True)
    assert "é" in load_tokenizer(out).chars


def test_existing_output_is_refused_without_force(tmp_path, text_file, dataset):
    with pytest.raises(MiniGPTError, match="already holds a dataset.*--force"):
        prepare_dataset([text_file], dataset, quiet=True)
    prepare_dataset([text_file], dataset, force=True, quiet=True)
    assert (dataset / "meta.json").is_file()


def test_interrupted_prepare_leaves_no_dataset(tmp_path, text_file, monkeypatch):
    from minigpt.data.meta import DatasetMeta

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(DatasetMeta, "to_json", boom)
    with pytest.raises(KeyboardInterrupt):
        prepare_dataset([text_file], tmp_path / "ds", quiet=True)
    assert not (tmp_path / "ds").exists()
    assert not list(tmp_path.glob(".ds*"))


def test_not_a_dataset(tmp_path):
    with pytest.raises(MiniGPTError, match="not a prepared dataset"):
        Dataset(tmp_path)


# --- documents, BPE, shards, report -------------------------------------------------------------

import unicodedata  # noqa: E402

from minigpt.data.clean import CleanConfig  # noqa: E402
from minigpt.data.tokenizer import BPETokenizer  # noqa: E402

from .test_tokenizer import corpus  # noqa: E402


def write_docs(folder, docs):
    folder.mkdir(parents=True, exist_ok=True)
    for i, doc in enumerate(docs):
        (folder / f"doc{i:03d}.txt").write_text(doc, encoding="utf-8")
    return folder


def read_split(ds, name):
    meta = json.loads((ds / "meta.json").read_text())
    dtype = meta["dtype"]
    return np.concatenate([np.fromfile(ds / f, dtype=dtype) for f in meta["splits"][name]["files"]])


@pytest.fixture(scope="module")
def docs():
    return [f"{d} (document {i})" for i, d in enumerate(corpus())]


@pytest.fixture(scope="module")
def bpe_dataset(tmp_path_factory, docs):
    root = tmp_path_factory.mktemp("bpe")
    folder = write_docs(root / "docs", docs + docs[:5])  # five exact duplicates
    return prepare_dataset([folder], root / "ds", tokenizer="bpe", vocab_size=500, quiet=True)


def test_bpe_dataset_holds_the_documents_between_end_of_text_tokens(bpe_dataset, docs):
    tok = load_tokenizer(bpe_dataset)
    assert isinstance(tok, BPETokenizer)
    meta = json.loads((bpe_dataset / "meta.json").read_text())
    texts = {}
    for name in ("train", "val"):
        ids = read_split(bpe_dataset, name).tolist()
        parts = tok.decode(ids).split("<|endoftext|>")
        assert ids.count(tok.eot_id) == len(parts) - 1
        texts[name] = parts
        info = meta["splits"][name]
        assert info["documents"] == len(parts) and info["tokens"] == len(ids)
        assert info["chars"] == sum(map(len, parts))
        assert info["bytes"] == sum(len(p.encode()) for p in parts)
    nfc = [unicodedata.normalize("NFC", d) for d in docs]  # cleaning composes e + U+0301
    assert sorted(texts["train"] + texts["val"]) == sorted(nfc)  # duplicates dropped
    assert len(texts["val"]) == len(docs) // 10
    report = meta["report"]
    assert report["documents"] == {
        "read": len(docs) + 5, "kept": len(docs), "empty": 0, "too_short": 0, "duplicates": 5
    }  # fmt: skip
    assert report["split"] == "documents"
    assert len(report["top_tokens"]) == 20
    assert report["top_tokens"][0]["count"] >= report["top_tokens"][-1]["count"]
    assert meta["tokenizer"]["special_tokens"] == {"<|endoftext|>": tok.eot_id}


def test_document_split_is_deterministic_from_the_seed(tmp_path, docs):
    folder = write_docs(tmp_path / "docs", docs)

    def val_docs(seed, name):
        ds = prepare_dataset([folder], tmp_path / name, tokenizer="char", split="documents",
                             seed=seed, quiet=True)  # fmt: skip
        return load_tokenizer(ds).decode(read_split(ds, "val").tolist())

    first = val_docs(1, "a")
    assert first == val_docs(1, "b")
    assert first != val_docs(2, "c")


def test_workers_give_identical_datasets(tmp_path, docs):
    folder = write_docs(tmp_path / "docs", docs)
    one = prepare_dataset([folder], tmp_path / "one", tokenizer="bpe", vocab_size=400,
                          workers=1, quiet=True)  # fmt: skip
    two = prepare_dataset([folder], tmp_path / "two", tokenizer="bpe", vocab_size=400,
                          workers=2, quiet=True)  # fmt: skip
    for name in ("tokenizer.json", "train.bin", "val.bin"):
        assert (one / name).read_bytes() == (two / name).read_bytes()


@pytest.mark.parametrize("split", ["documents", "tail"])
def test_several_shards_read_like_one_file(tmp_path, docs, split):
    folder = write_docs(tmp_path / "docs", docs)
    kwargs = dict(tokenizer="char", split=split, quiet=True)
    one = prepare_dataset([folder], tmp_path / "one", **kwargs)
    many = prepare_dataset([folder], tmp_path / "many", shard_tokens=1000, **kwargs)
    meta = json.loads((many / "meta.json").read_text())
    assert len(meta["splits"]["train"]["files"]) > 3
    assert meta["splits"]["train"]["files"][0] == "train-00000.bin"
    a, b = Dataset(one), Dataset(many)
    for name in ("train", "val"):
        assert np.array_equal(read_split(one, name), read_split(many, name))
        assert a.splits[name].tokens == b.splits[name].tokens
        assert meta["splits"][name]["tokens"] == b.splits[name].tokens
    x, y = b.get_batch("train", 8, 16, batch_rng(0, "train", 0))
    assert x.shape == (8, 16) and (x[:, 1:] == y[:, :-1]).all()


def test_classic_tail_split_over_documents(tmp_path, docs):
    folder = write_docs(tmp_path / "docs", docs[:3])
    ds = prepare_dataset([folder], tmp_path / "ds", val_fraction=0.3, quiet=True)
    tok = load_tokenizer(ds)
    whole = "\n\n".join(docs[:3])
    cut = int(len(whole) * 0.7)
    assert tok.decode(read_split(ds, "train").tolist()) == whole[:cut]
    assert tok.decode(read_split(ds, "val").tolist()) == whole[cut:]
    meta = json.loads((ds / "meta.json").read_text())
    assert meta["splits"]["train"]["chars"] == cut
    assert meta["splits"]["val"]["documents"] == 1


def test_tail_split_chars_and_bytes_with_bpe(tmp_path, docs):
    folder = write_docs(tmp_path / "docs", docs[:8])
    ds = prepare_dataset([folder], tmp_path / "ds", tokenizer="bpe", vocab_size=400,
                         split="tail", quiet=True)  # fmt: skip
    tok = load_tokenizer(ds)
    meta = json.loads((ds / "meta.json").read_text())
    for name in ("train", "val"):
        text = tok.decode(read_split(ds, name).tolist()).replace("<|endoftext|>", "")
        assert abs(meta["splits"][name]["chars"] - len(text)) <= 2  # a cut character


def test_cleaning_is_applied_and_counted(tmp_path):
    folder = write_docs(
        tmp_path / "docs",
        ["GÃ¼n tÉ™lim " * 20, "e\u0301 control\x07 " * 20, "short", "  \n ", "ok text " * 20],
    )
    ds = prepare_dataset([folder], tmp_path / "ds", split="documents", val_fraction=0.5,
                         clean=CleanConfig(min_chars=10), quiet=True)  # fmt: skip
    tok = load_tokenizer(ds)
    text = tok.decode(read_split(ds, "train").tolist()) + tok.decode(read_split(ds, "val").tolist())
    assert "Gün təlim" in text and "é" in text and "\x07" not in text and "short" not in text
    report = json.loads((ds / "meta.json").read_text())["report"]
    assert report["cleaning"]["mojibake_fixed"] == 1
    assert report["cleaning"]["nfc_changed"] == 1
    assert report["cleaning"]["control_chars_removed"] == 20
    assert report["documents"]["empty"] == 1 and report["documents"]["too_short"] == 1


def test_cleaning_switched_off_keeps_text_and_duplicates(tmp_path):
    folder = write_docs(tmp_path / "docs", ["GÃ¼n " * 20, "GÃ¼n " * 20, "other " * 20])
    ds = prepare_dataset([folder], tmp_path / "ds", split="tail", quiet=True,
                         clean=CleanConfig(fix_mojibake=False, dedupe=False))  # fmt: skip
    report = json.loads((ds / "meta.json").read_text())["report"]
    assert report["documents"]["kept"] == 3
    assert "Ã" in load_tokenizer(ds).chars


def test_jsonl_and_parquet_inputs(tmp_path, docs):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "a.jsonl").write_text(
        "\n".join(json.dumps({"body": d}, ensure_ascii=False) for d in docs[:30])
    )
    pq.write_table(pa.table({"body": docs[30:]}), tmp_path / "b.parquet")
    ds = prepare_dataset([tmp_path / "a.jsonl", tmp_path / "b.parquet"], tmp_path / "ds",
                         tokenizer="char", split="documents", text_field="body", quiet=True)  # fmt: skip
    meta = json.loads((ds / "meta.json").read_text())
    assert meta["report"]["documents"]["kept"] == len(docs)
    assert [s["path"] for s in meta["sources"]] == [
        str(tmp_path / "a.jsonl"),
        str(tmp_path / "b.parquet"),
    ]


def test_reuse_a_trained_tokenizer(tmp_path, bpe_dataset, docs):
    folder = write_docs(tmp_path / "docs", docs[:20])
    ds = prepare_dataset([folder], tmp_path / "ds", tokenizer=bpe_dataset / "tokenizer.json",
                         quiet=True)  # fmt: skip
    a = json.loads((ds / "meta.json").read_text())["tokenizer"]
    b = json.loads((bpe_dataset / "meta.json").read_text())["tokenizer"]
    assert a["fingerprint"] == b["fingerprint"] and a["kind"] == "bpe"


def test_unknown_characters_with_a_reused_char_tokenizer(tmp_path, dataset):
    path = tmp_path / "new.txt"
    path.write_text("To be or not to be? Zé " * 40)
    with pytest.raises(MiniGPTError, match=r"'é' \(U\+00E9\).*--unknown unk"):
        prepare_dataset([path], tmp_path / "a", tokenizer=dataset, quiet=True)
    ds = prepare_dataset([path], tmp_path / "b", tokenizer=dataset, unknown="unk", quiet=True)
    report = json.loads((ds / "meta.json").read_text())["report"]
    known = set(load_tokenizer(dataset).chars)
    assert report["unknown_chars"] == sum(c not in known for c in path.read_text()) > 40


def test_report_is_printed(tmp_path, text_file, capsys):
    prepare_dataset([text_file], tmp_path / "ds")
    out = capsys.readouterr().out
    assert "train" in out and "bytes/token" in out and "top tokens: ' '" in out
    assert "duplicates" in out and "mojibake" in out


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(tokenizer="bpe", vocab_size=100), "vocab size 100 is too small"),
        (dict(tokenizer="bpe", vocab_size=50000), "more than this text can teach"),
        (dict(tokenizer="wordpiece"), "unknown tokenizer 'wordpiece'; choose char, bpe or gpt2"),
        (dict(tokenizer="bpe", vocab_size=300, split="documents"), "val split got no documents"),
        (dict(split="random"), "unknown split 'random'"),
    ],
)
def test_bad_options(tmp_path, text_file, kwargs, message):
    with pytest.raises(MiniGPTError, match=message):
        prepare_dataset([text_file], tmp_path / "ds", quiet=True, **kwargs)
    assert not (tmp_path / "ds").exists() and not list(tmp_path.glob(".ds*"))


def test_binary_files_are_skipped_with_a_warning(tmp_path, text_file, capsys):
    binary = tmp_path / "img.txt"
    binary.write_bytes(b"\x00\x01\x02" * 10)
    ds = prepare_dataset([text_file, binary], tmp_path / "ds")
    assert f"skipped 1 binary file(s): {binary}" in capsys.readouterr().err
    assert json.loads((ds / "meta.json").read_text())["report"]["skipped_binary_files"] == [
        str(binary)
    ]
    with pytest.raises(MiniGPTError, match="looks binary"):
        prepare_dataset([text_file, binary], tmp_path / "ds2", strict=True, quiet=True)


def test_interrupted_bpe_prepare_leaves_no_dataset(tmp_path, docs, monkeypatch):
    from minigpt.data.writer import SplitWriter

    folder = write_docs(tmp_path / "docs", docs[:20])

    def boom(self, batch):
        raise KeyboardInterrupt

    monkeypatch.setattr(SplitWriter, "add", boom)
    with pytest.raises(KeyboardInterrupt):
        prepare_dataset([folder], tmp_path / "ds", tokenizer="bpe", vocab_size=300, quiet=True)
    assert not (tmp_path / "ds").exists() and not list(tmp_path.glob(".ds*"))


def test_long_documents_in_pieces_encode_like_whole_ones(tmp_path, monkeypatch):
    import minigpt.data.sources as sources

    text = unicodedata.normalize("NFC", " ".join(corpus()[:10]))
    path = tmp_path / "long.txt"
    path.write_text(text)
    tok = BPETokenizer.train([text], vocab_size=400)
    tok.save(tmp_path)
    monkeypatch.setattr(sources, "PIECE_CHARS", 500)
    ds = prepare_dataset([path], tmp_path / "ds", tokenizer=tmp_path / "tokenizer.json",
                         split="tail", quiet=True)  # fmt: skip
    ids = np.concatenate([read_split(ds, "train"), read_split(ds, "val")])
    assert ids.tolist() == tok.encode(text)


def test_train_tokenizer_to_a_file_or_folder(tmp_path, text_file):
    from minigpt.data.tokenizer_training import train_tokenizer

    (tmp_path / "tokenizer.json").write_text("not mine")
    path = train_tokenizer([text_file], tmp_path / "mine.json", vocab_size=300, quiet=True)
    assert path == tmp_path / "mine.json" and load_tokenizer(path).vocab_size == 300
    assert (tmp_path / "tokenizer.json").read_text() == "not mine"
    chars = train_tokenizer([text_file], tmp_path / "chars", kind="char", quiet=True)
    assert chars == tmp_path / "chars" / "tokenizer.json"
    assert set(load_tokenizer(chars).chars) == set(text_file.read_text())
    with pytest.raises(MiniGPTError, match="can only train 'bpe' or 'char'"):
        train_tokenizer([text_file], tmp_path / "x", kind="gpt2")


def test_auto_split_falls_back_to_the_tail_for_too_few_documents(tmp_path, text_file):
    ds = prepare_dataset([text_file], tmp_path / "ds", tokenizer="bpe", vocab_size=300, quiet=True)
    meta = json.loads((ds / "meta.json").read_text())
    assert meta["report"]["split"] == "tail"
    tok = load_tokenizer(ds)
    train, val = (tok.decode(read_split(ds, s).tolist()) for s in ("train", "val"))
    assert train + val == SMALL_TEXT
    assert meta["splits"]["train"]["chars"] + meta["splits"]["val"]["chars"] == len(SMALL_TEXT)
    assert meta["splits"]["val"]["documents"] == meta["splits"]["train"]["documents"] == 1
