import gzip
import json

import pytest

import minigpt.data.decode as decode
import minigpt.data.sources as sources
from minigpt.data.sources import SourceOptions, file_format, find_inputs, read_pieces
from minigpt.errors import MiniGPTError


def texts(files, **options):
    return [p.text for p in read_pieces(files, SourceOptions(**options))]


def write_jsonl(path, records, opener=open):
    with opener(path, "wt", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return path


def test_formats_from_names(tmp_path):
    assert file_format(tmp_path / "a.txt") == ("text", None)
    assert file_format(tmp_path / "a.MD.gz") == ("text", "gzip")
    assert file_format(tmp_path / "a.jsonl.zst") == ("jsonl", "zstd")
    assert file_format(tmp_path / "a.parquet") == ("parquet", None)
    assert file_format(tmp_path / "README") == ("text", None)


def test_folders_are_searched_recursively_with_globs(tmp_path):
    for name in ["a.txt", "sub/b.md", "sub/deep/c.jsonl.gz", "notes.tmp", "sub/skip.txt"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    rel = lambda files: [p.relative_to(tmp_path).as_posix() for p in files]  # noqa: E731
    found = rel(find_inputs([tmp_path]))
    assert found == ["a.txt", "sub/b.md", "sub/deep/c.jsonl.gz", "sub/skip.txt"]
    assert rel(find_inputs([tmp_path], exclude=["skip.*"])) == found[:3]
    assert rel(find_inputs([tmp_path], include=["sub/*.md", "*.tmp"])) == ["notes.tmp", "sub/b.md"]
    with pytest.raises(MiniGPTError, match="no text files matching \\*.csv"):
        find_inputs([tmp_path], include=["*.csv"])


def test_text_files_are_one_document_or_paragraphs(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("first para\nline two\n\n\n  \nsecond\n\nthird\n")
    assert texts([path]) == ["first para\nline two\n\n\n  \nsecond\n\nthird\n"]
    assert texts([path], paragraphs=True) == ["first para\nline two", "second", "third\n"]


def test_jsonl_field_and_compression(tmp_path):
    import zstandard

    records = [{"text": "Salam dünya", "id": 1}, {"text": "Привет"}, {"body": "x", "text": None}]
    plain = write_jsonl(tmp_path / "a.jsonl", records)
    zipped = write_jsonl(tmp_path / "b.jsonl.gz", records, gzip.open)
    zst = tmp_path / "c.jsonl.zst"
    zst.write_bytes(zstandard.ZstdCompressor().compress(plain.read_bytes()))
    expected = ["Salam dünya", "Привет", ""]
    assert texts([plain]) == texts([zipped]) == texts([zst]) == expected
    pieces = list(read_pieces([plain]))
    assert pieces[1].source == f"{plain}:2"


def test_compressed_text(tmp_path):
    path = tmp_path / "a.txt.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("Gün təlim")
    assert texts([path]) == ["Gün təlim"]


def test_parquet_column(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "a.parquet"
    table = pa.table({"content": ["bir", "iki", None, "üç"], "n": [1, 2, 3, 4]})
    pq.write_table(table, path, row_group_size=2)
    assert texts([path], text_field="content") == ["bir", "iki", "", "üç"]
    with pytest.raises(MiniGPTError, match=r"no column 'contnet' \(did you mean 'content'\?\)"):
        texts([path], text_field="contnet")
    with pytest.raises(MiniGPTError, match="column 'n' holds int64, not text"):
        texts([path], text_field="n")


@pytest.mark.parametrize(
    ("lines", "field", "message"),
    [
        (['{"text": "ok"}', "{not json"], "text", r"b.jsonl:2 is not valid JSON"),
        (['{"text": "ok"}', '{"txt": "no"}'], "text", r"b.jsonl:2 has no field 'text'.*txt"),
        (['{"text": 5}'], "text", r"b.jsonl:1 field 'text' holds int, not text"),
        (["[1, 2]"], "text", r"b.jsonl:1 is not a JSON object"),
    ],
)
def test_bad_jsonl(tmp_path, lines, field, message):
    path = tmp_path / "b.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(MiniGPTError, match=message):
        texts([path], text_field=field)


def test_invalid_utf8_offset_across_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(decode, "READ_BYTES", 7)
    path = tmp_path / "bad.txt"
    path.write_bytes("ə".encode() * 10 + b"\xff" + b"tail")
    with pytest.raises(MiniGPTError, match=r"bad.txt is not valid utf-8 \(byte offset 20\)"):
        texts([path])
    assert texts([path], errors="replace") == ["ə" * 10 + "\ufffdtail"]


def test_binary_files_are_skipped_or_refused(tmp_path):
    good, binary = tmp_path / "a.txt", tmp_path / "b.txt"
    good.write_text("hello")
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    options = SourceOptions()
    assert [p.text for p in read_pieces([good, binary], options)] == ["hello"]
    assert options.skipped == [str(binary)]
    with pytest.raises(MiniGPTError, match="b.txt looks binary.*--strict"):
        texts([good, binary], strict=True)


def test_damaged_compressed_file(tmp_path):
    path = tmp_path / "a.txt.gz"
    path.write_bytes(gzip.compress(b"hello world" * 100)[:30])
    with pytest.raises(MiniGPTError, match="a.txt.gz is damaged"):
        texts([path])


def test_long_documents_come_in_pieces_cut_between_words(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "PIECE_CHARS", 40)
    monkeypatch.setattr(decode, "READ_BYTES", 16)
    text = "Bu gün hava çox gözəldir və biz parkda gəzirik. " * 6
    path = tmp_path / "long.txt"
    path.write_text(text)
    pieces = list(read_pieces([path]))
    assert len(pieces) > 3
    assert "".join(p.text for p in pieces) == text
    assert [p.first for p in pieces] == [True] + [False] * (len(pieces) - 1)
    assert [p.last for p in pieces] == [False] * (len(pieces) - 1) + [True]
    assert all(not p.text[-1].isspace() for p in pieces[:-1])
    assert all(p.text[0] == " " and p.text[1].isalpha() for p in pieces[1:])


def test_missing_input(tmp_path):
    with pytest.raises(MiniGPTError, match="does not exist"):
        find_inputs([tmp_path / "nope.txt"])
