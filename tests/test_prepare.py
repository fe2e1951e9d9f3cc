import json

import numpy as np
import pytest

from minigpt.dataset import Dataset, batch_rng
from minigpt.errors import MiniGPTError
from minigpt.prepare import prepare_dataset
from minigpt.tokenizer import load_tokenizer

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
    from minigpt.prepare import token_dtype

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
    import minigpt.prepare as prep

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(prep.DatasetMeta, "to_json", boom)
    with pytest.raises(KeyboardInterrupt):
        prepare_dataset([text_file], tmp_path / "ds", quiet=True)
    assert not (tmp_path / "ds").exists()
    assert not list(tmp_path.glob(".ds*"))


def test_not_a_dataset(tmp_path):
    with pytest.raises(MiniGPTError, match="not a prepared dataset"):
        Dataset(tmp_path)
