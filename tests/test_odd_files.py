"""Odd inputs to ``prepare`` (issue 19, item 4): each is a correct result or one clear line."""

import codecs
import errno
import json
import os
import resource
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

import minigpt.data.decode as decode
import minigpt.data.sources as sources
from minigpt.data.chat_prepare import prepare_chat_dataset
from minigpt.data.decode import jsonl_records
from minigpt.data.prepare import prepare_dataset
from minigpt.data.read_notes import FileNotes
from minigpt.data.sources import SourceOptions, find_inputs, read_pieces
from minigpt.data.tokenizer import BPETokenizer, load_tokenizer
from minigpt.errors import MiniGPTError

LINE = "Gün çıxdı, hava çox gözəl idi. 世界 😀 naïve café "  # 1-4 byte characters


def read_meta(ds):
    return json.loads((ds / "meta.json").read_text())


def all_ids(ds):
    meta = read_meta(ds)
    return np.concatenate(
        [
            np.fromfile(ds / f, meta["dtype"])
            for s in ("train", "val")
            for f in meta["splits"][s]["files"]
        ]
    ).tolist()


def one_line_file(tmp_path, repeat=60, line_end=""):
    path = tmp_path / "one-line.txt"
    path.write_bytes(((LINE + line_end) * repeat).encode())
    return path, (LINE + ("\n" if line_end else "")) * repeat


@pytest.mark.parametrize("read_bytes", [1, 7, 64])
def test_chunks_never_split_a_character_or_a_crlf(tmp_path, monkeypatch, read_bytes):
    path, text = one_line_file(tmp_path, repeat=20, line_end="\r\n")
    monkeypatch.setattr(decode, "READ_BYTES", read_bytes)
    options = SourceOptions()
    assert "".join(p.text for p in read_pieces([path], options)) == text
    assert options.notes.files[str(path)].crlf == 20
    assert options.notes.files[str(path)].cr == 0


@pytest.mark.parametrize("kind", ["char", "bpe"])
def test_a_long_single_line_reads_in_bounded_pieces_and_tokenizes_as_a_whole(
    tmp_path, monkeypatch, kind
):
    """A file without line breaks arrives in pieces of at most PIECE_CHARS characters (that is
    the memory bound) and gives the same ids as encoding the file whole."""
    path, text = one_line_file(tmp_path)
    if kind == "bpe":
        BPETokenizer.train([text], vocab_size=300).save(tmp_path)
    else:
        prepare_dataset([path], tmp_path / "whole", quiet=True)
        load_tokenizer(tmp_path / "whole").save(tmp_path)
    tok = load_tokenizer(tmp_path)
    monkeypatch.setattr(decode, "READ_BYTES", 5)
    monkeypatch.setattr(sources, "PIECE_CHARS", 100)
    pieces = list(read_pieces([path]))
    assert len(pieces) > 10 and max(len(p.text) for p in pieces) <= 100
    ds = prepare_dataset([path], tmp_path / "ds", tokenizer=tmp_path / "tokenizer.json",
                         split="tail", quiet=True)  # fmt: skip
    assert all_ids(ds) == tok.encode(text)


def test_utf8_bom_is_removed_not_trained_on(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes(codecs.BOM_UTF8 + "Salam dünya\n".encode() * 20)
    ds = prepare_dataset([path], tmp_path / "ds", quiet=True)
    assert "\ufeff" not in load_tokenizer(ds).chars
    assert read_meta(ds)["report"]["reading"]["boms_removed"] == 1


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be", "utf-32-le"])
def test_utf16_and_utf32_files_are_decoded_by_their_bom(tmp_path, codec, capsys):
    text = "Salam dünya, 世界 😀\n" * 20
    path = tmp_path / f"{codec}.txt"
    path.write_bytes("\ufeff".encode(codec) + text.encode(codec))
    assert [p.text for p in read_pieces([path])] == [text]
    ds = prepare_dataset([path], tmp_path / "ds")
    assert read_meta(ds)["report"]["reading"]["encodings"] == {str(path): codec}
    assert f"{path} decoded as {codec}" in capsys.readouterr().out
    assert set(load_tokenizer(ds).chars) == set(text)


def test_nul_bytes_are_an_error_or_dropped_and_counted(tmp_path):
    no_bom = tmp_path / "utf16.txt"
    no_bom.write_bytes("UTF-16 without a byte-order mark".encode("utf-16-le"))
    with pytest.raises(MiniGPTError, match=r"utf16.txt looks binary.*--encoding utf-16-le"):
        prepare_dataset([no_bom], tmp_path / "ds", strict=True, quiet=True)
    path = tmp_path / "a.txt"
    path.write_bytes(b"x" * 9000 + b"\0 tail")  # NUL past the first 8 KiB: not caught as binary
    with pytest.raises(MiniGPTError, match=r"a.txt holds a NUL byte at byte offset 9000.*utf-16"):
        prepare_dataset([path], tmp_path / "ds", quiet=True)
    assert not (tmp_path / "ds").exists()
    ds = prepare_dataset([path], tmp_path / "ds", errors="replace", quiet=True)
    assert read_meta(ds)["report"]["reading"]["nul_removed"] == 1


def test_crlf_and_lone_cr_become_newlines_and_are_counted(tmp_path, capsys):
    path = tmp_path / "mixed.txt"
    path.write_bytes(b"dos line\r\n" * 30 + b"old mac\r" * 10 + b"unix\n")
    ds = prepare_dataset([path], tmp_path / "ds")
    reading = read_meta(ds)["report"]["reading"]
    assert (reading["crlf"], reading["cr"]) == (30, 10)
    assert "\r" not in load_tokenizer(ds).chars
    assert "30 CRLF and 10 CR line ends made \\n" in capsys.readouterr().out


def bad_jsonl(tmp_path, bad=b'{"text": "broken\n'):
    path = tmp_path / "docs.jsonl"
    good = [json.dumps({"text": f"document number {i} " * 5}).encode() + b"\n" for i in range(6)]
    path.write_bytes(b"".join(good[:3]) + bad + b"".join(good[3:]))
    return path


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        (b'{"text": "broken\n', "is not valid JSON"),
        (b'{"text": "\xff\xfe"}\n', "is not valid utf-8"),
    ],
)
def test_a_bad_jsonl_line_is_named_or_skipped(tmp_path, monkeypatch, bad, why):
    monkeypatch.setattr(decode, "READ_BYTES", 16)  # lines span chunks: numbering must hold
    path = bad_jsonl(tmp_path, bad)
    with pytest.raises(MiniGPTError, match=rf"docs.jsonl:4 {why}.*--skip-bad-lines"):
        prepare_dataset([path], tmp_path / "ds", quiet=True)
    ds = prepare_dataset([path], tmp_path / "ds",
                         skip_bad_lines=True, quiet=True)  # fmt: skip
    meta = read_meta(ds)
    assert meta["report"]["reading"]["bad_lines_skipped"] == 1
    assert meta["report"]["reading"]["first_bad_lines"] == [f"{path}:4"]
    assert meta["report"]["documents"]["read"] == 6


def test_skip_bad_lines_from_the_cli_for_plain_and_chat_data(tmp_path, capsys):
    from minigpt.cli import main

    path = bad_jsonl(tmp_path)
    assert main(["prepare", str(path), "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "docs.jsonl:4 is not valid JSON" in err
    assert main(["prepare", str(path), "--out", str(tmp_path / "a"), "--skip-bad-lines"]) == 0
    assert "1 bad line(s) skipped" in capsys.readouterr().out

    chat = tmp_path / "chat.jsonl"
    lines = [json.dumps({"instruction": f"q{i}", "output": f"a{i}"}) for i in range(5)]
    chat.write_text("\n".join(lines[:2] + ["{oops"] + lines[2:]) + "\n")
    with pytest.raises(MiniGPTError, match="chat.jsonl:3 is not valid JSON"):
        prepare_chat_dataset([chat], tmp_path / "c", quiet=True)
    args = ["prepare", str(chat), "--format", "chat", "--out", str(tmp_path / "c")]
    assert main([*args, "--skip-bad-lines"]) == 0
    assert "1 bad line(s) skipped (" in capsys.readouterr().out
    assert read_meta(tmp_path / "c")["report"]["conversations"]["read"] == 5


def chat_folder(tmp_path, encoding="utf-8"):
    """A folder of chat jsonl: good.jsonl in ``encoding`` (replies with an é), broken.jsonl."""
    folder = tmp_path / "chat"
    folder.mkdir()
    lines = [json.dumps({"instruction": f"q{i}", "output": f"café {i}"}, ensure_ascii=False)
             for i in range(5)]  # fmt: skip
    (folder / "good.jsonl").write_bytes(("\n".join(lines) + "\n").encode(encoding))
    (folder / "broken.jsonl").write_text("{oops\n")
    return folder


def test_chat_prepare_honours_the_reading_flags(tmp_path, capsys):
    """--include/--exclude, --encoding and --errors reach chat data as they reach text."""
    from minigpt.cli import main

    folder = chat_folder(tmp_path, "latin-1")
    chat = ["prepare", str(folder), "--format", "chat", "--quiet"]
    assert main([*chat, "--out", str(tmp_path / "a")]) == 2
    assert "broken.jsonl:1 is not valid JSON" in capsys.readouterr().err
    assert main([*chat, "--out", str(tmp_path / "a"), "--exclude", "broken.jsonl"]) == 2
    assert "good.jsonl:1 is not valid utf-8" in capsys.readouterr().err
    for n, flags in enumerate([["--encoding", "latin-1"], ["--errors", "replace"]]):
        out = tmp_path / f"ok{n}"
        assert main([*chat, "--out", str(out), "--include", "good.*", *flags]) == 0
        meta = read_meta(out)
        assert meta["report"]["conversations"]["kept"] == 5
        assert [Path(f["path"]).name for f in meta["sources"]] == ["good.jsonl"]
    vocab = load_tokenizer(tmp_path / "ok0").decode(list(range(200)))
    assert "é" in vocab and "\ufffd" in load_tokenizer(tmp_path / "ok1").decode(list(range(200)))


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--text-field", "body"], "--text-field does not apply to --format chat (name chat"),
        (["--paragraphs"], "--paragraphs does not apply to --format chat"),
        (["--min-chars", "10"], "--min-chars does not apply to --format chat"),
        (["--no-dedupe"], "--no-dedupe does not apply to --format chat"),
        (["--split", "tail"], "--split does not apply to --format chat"),
        (["--unknown", "unk"], "--unknown does not apply"),
        (["--workers", "2"], "--workers does not apply"),
    ],
)
def test_chat_prepare_refuses_text_only_flags(tmp_path, capsys, flags, message):
    from minigpt.cli import main

    folder = chat_folder(tmp_path)
    args = ["prepare", str(folder / "good.jsonl"), "--format", "chat", "--out", str(tmp_path / "c")]
    assert main([*args, *flags]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "leave it out" in err
    assert not (tmp_path / "c").exists()


def test_jsonl_line_numbers_in_utf16(tmp_path):
    path = tmp_path / "w.jsonl"
    path.write_bytes(codecs.BOM_UTF16_LE + '{"text": "a"}\r\n\n{bad\r\n'.encode("utf-16-le"))
    notes = FileNotes()
    with open(path, "rb") as f:
        assert list(jsonl_records(f, path, skip_bad=True, notes=notes)) == [(1, {"text": "a"})]
    assert (notes.encoding, notes.bad_lines, notes.first_bad_lines) == ("utf-16-le", 1, [3])


def test_symlink_loops_end_and_are_reported(tmp_path, capsys):
    root = tmp_path / "corpus"
    (root / "a").mkdir(parents=True)
    (root / "a" / "x.txt").write_text("text in a " * 20)
    (root / "a" / "up").symlink_to("..")  # a loop back to the root
    (root / "loop1").symlink_to("loop2")  # a link loop with no end
    (root / "loop2").symlink_to("loop1")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "y.txt").write_text("linked folder text " * 20)
    (root / "linked").symlink_to(tmp_path / "elsewhere")  # followed, once
    not_followed = []
    files = find_inputs([root], not_followed=not_followed)
    assert [p.relative_to(root).as_posix() for p in files] == ["a/x.txt", "linked/y.txt"]
    assert sorted(n.split(" (")[0] for n in not_followed) == [
        str(root / "a" / "up"), str(root / "loop1"), str(root / "loop2")
    ]  # fmt: skip
    ds = prepare_dataset([root], tmp_path / "ds")
    assert len(read_meta(ds)["report"]["reading"]["not_followed"]) == 3
    assert "3 link(s) not followed" in capsys.readouterr().out


def test_a_file_that_changes_while_read_publishes_nothing(tmp_path, monkeypatch):
    from minigpt.data.writer import SplitWriter

    path = tmp_path / "growing.txt"
    path.write_text("first version of the text\n" * 50)
    add = SplitWriter.add

    def add_and_append(self, batch):
        with open(path, "a") as f:
            f.write("appended by another program\n")
        add(self, batch)

    monkeypatch.setattr(SplitWriter, "add", add_and_append)
    with pytest.raises(MiniGPTError, match=r"growing.txt changed while prepare was reading it"):
        prepare_dataset([path], tmp_path / "ds", quiet=True)
    assert not (tmp_path / "ds").exists() and not list(tmp_path.glob(".ds*"))


def test_a_disk_that_fills_keeps_the_old_dataset(tmp_path, monkeypatch):
    from minigpt.data import shards

    path = tmp_path / "a.txt"
    path.write_text("some text for the dataset\n" * 100)
    ds = prepare_dataset([path], tmp_path / "ds", quiet=True)
    before = (ds / "meta.json").read_text()

    def full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(shards.ShardWriter, "write", lambda self, ids: full())
    with pytest.raises(MiniGPTError, match=r"the disk is full writing .*free there.*ds is as it"):
        prepare_dataset([path], ds, force=True, quiet=True)
    assert (ds / "meta.json").read_text() == before
    assert not list(tmp_path.glob(".ds*"))


@contextmanager
def file_size_limit(limit):
    """``ulimit -f`` for this process: a write past ``limit`` bytes fails with EFBIG, as one
    on a full disk fails with ENOSPC (Python ignores SIGXFSZ, so nothing is killed)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


def test_file_size_limit_in_a_real_prepare(tmp_path, capsys):
    from minigpt.cli import main

    path = tmp_path / "big.txt"
    path.write_text("a line of text that fills the shard quickly\n" * 2000)  # ~88 KB
    with file_size_limit(64_000):
        code = main(["prepare", str(path), "--out", str(tmp_path / "ds"), "--workers", "1"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "the file size limit was reached (ulimit -f) writing" in err
    assert "nothing was written to" in err
    assert not (tmp_path / "ds").exists() and not list(tmp_path.glob(".ds*"))


def test_a_disk_that_fills_keeps_the_earlier_checkpoint(tmp_path, monkeypatch):
    import minigpt.checkpoint as checkpoint
    from minigpt.config import ModelConfig
    from minigpt.model import GPT

    model = GPT(ModelConfig(vocab_size=11, block_size=8, n_layer=1, n_head=1, n_embd=8))
    good = checkpoint.save_checkpoint(tmp_path, 1, model, None, {"val_loss": 2.0})
    with file_size_limit(2_000), pytest.raises(MiniGPTError) as raised:
        checkpoint.save_checkpoint(tmp_path, 2, model, None, {"val_loss": 1.0})
    message = str(raised.value)
    assert "ckpt-0000002 not saved: the file size limit was reached" in message
    assert "needed)" in message and f"the newest earlier one, {good}, is intact" in message
    assert [p.name for p in checkpoint.checkpoint_dirs(tmp_path)] == ["ckpt-0000001"]
    assert checkpoint.find_checkpoint(tmp_path).iteration == 1
    assert not list((tmp_path / "checkpoints").glob(".tmp*"))


def test_bpe_learns_the_same_from_a_long_line_cut_in_parts():
    """Training splits long texts (bounded memory) where the pre-tokenizer splits anyway."""
    text = LINE * 40 + "code_x = f(y)  +  2 " * 30 + "CJK 世界 没有 空格 " * 20
    parts = list(sources.split_text(text, 120))
    assert len(parts) > 10 and max(map(len, parts)) <= 120 and "".join(parts) == text
    whole = BPETokenizer.train([text], vocab_size=300)
    cut = BPETokenizer.train(parts, vocab_size=300)
    assert cut.to_json() == whole.to_json()


def test_unreadable_and_vanishing_files(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("some text " * 20)
    pieces = read_pieces([path, tmp_path / "gone.txt"])
    next(pieces)
    with pytest.raises(MiniGPTError, match="gone.txt disappeared while prepare was reading it"):
        next(pieces)
    if os.geteuid() != 0:  # root reads anything
        path.chmod(0)
        with pytest.raises(MiniGPTError, match=r"cannot read .*a.txt \(Permission denied\)"):
            list(read_pieces([path]))
