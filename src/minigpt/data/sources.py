"""Reading a corpus: files and folders become a stream of documents.

Formats go by suffix: ``.txt .md .text .rst`` (one document per file, or one per blank-line
separated paragraph), ``.jsonl`` (one per record, a chosen field), ``.parquet`` (one per row, a
chosen column), and ``.gz`` / ``.zst`` compressed versions of each. Everything streams: a file
is never read whole, so a corpus of any size reads in constant memory.

A text document longer than ``PIECE_CHARS`` arrives in several pieces, cut just before a space
that follows a non-space and precedes a letter. Byte-level BPE's pre-tokenizer splits there
anyway, so encoding the pieces gives the same ids as encoding the whole document.
"""

from __future__ import annotations

import codecs
import fnmatch
import gzip
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

from minigpt.config import suggest
from minigpt.errors import MiniGPTError

TEXT_SUFFIXES = {".txt", ".md", ".text", ".rst"}
JSONL_SUFFIXES = {".jsonl", ".ndjson"}
PARQUET_SUFFIXES = {".parquet"}
COMPRESSIONS = {".gz": "gzip", ".zst": "zstd"}
PIECE_CHARS = 4_000_000
READ_BYTES = 1 << 20
BLANK_LINES = re.compile(r"\n[ \t\r\f\v]*\n\s*")
SAFE_CUT = re.compile(r"(?<=\S)(?= [^\W\d_])|(?<=\S\n)(?=\S)")


@dataclass
class SourceOptions:
    """How to find and read the inputs (the ``prepare`` flags of the same names)."""

    include: Sequence[str] = ()
    exclude: Sequence[str] = ()
    text_field: str = "text"
    paragraphs: bool = False
    encoding: str = "utf-8"
    errors: str = "strict"
    strict: bool = False
    skipped: list[str] = field(default_factory=list)


class Piece(NamedTuple):
    """A document, or part of one when ``first`` or ``last`` is False."""

    text: str
    source: str
    first: bool = True
    last: bool = True


def file_format(path: Path) -> tuple[str, str | None]:
    """('text' | 'jsonl' | 'parquet', compression or None) from the file name."""
    name = path.name.lower()
    compression = None
    for suffix, kind in COMPRESSIONS.items():
        if name.endswith(suffix):
            compression, name = kind, name[: -len(suffix)]
    suffix = Path(name).suffix
    if suffix in JSONL_SUFFIXES:
        return "jsonl", compression
    if suffix in PARQUET_SUFFIXES:
        return "parquet", compression
    return "text", compression


def _known(path: Path) -> bool:
    name = path.name.lower()
    for suffix in COMPRESSIONS:
        name = name.removesuffix(suffix)
    return Path(name).suffix in TEXT_SUFFIXES | JSONL_SUFFIXES | PARQUET_SUFFIXES


def _matches(rel: str, patterns: Sequence[str]) -> bool:
    name = rel.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(name, p) for p in patterns)


def find_inputs(
    inputs: Sequence[str | Path], include: Sequence[str] = (), exclude: Sequence[str] = ()
) -> list[Path]:
    """Files given directly, plus those found in folders (recursively, in sorted order).

    In folders, ``include`` globs (default: every known format) choose files and ``exclude``
    globs drop them; both match the path relative to the folder or the bare file name.
    """
    if not inputs:
        raise MiniGPTError("no input given; pass one or more text files or folders")
    files: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found = []
            for path in sorted(p for p in item.rglob("*") if p.is_file()):
                rel = path.relative_to(item).as_posix()
                wanted = _matches(rel, include) if include else _known(path)
                if wanted and not _matches(rel, exclude):
                    found.append(path)
            if not found:
                known = f"{', '.join(sorted(TEXT_SUFFIXES))}, .jsonl, .parquet, also .gz/.zst"
                what = f"matching {' '.join(include)}" if include else f"({known})"
                raise MiniGPTError(
                    f"folder {item} has no text files {what}; pass files directly or change "
                    "--include/--exclude"
                )
            files.extend(found)
        elif item.is_file():
            if not _matches(item.name, exclude):
                files.append(item)
        else:
            raise MiniGPTError(f"input {item} does not exist; check the path")
    if not files:
        raise MiniGPTError("every input was excluded by --exclude; loosen it")
    return files


class _Counting(io.RawIOBase):
    """A file whose reads report how many raw bytes went by (for the progress bar)."""

    def __init__(self, f: BinaryIO, advance: Callable[[int], None]) -> None:
        self.f, self.advance = f, advance

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self.f.readinto(buffer)
        self.advance(n or 0)
        return n


@contextmanager
def open_binary(
    path: Path, compression: str | None, advance: Callable[[int], None] = lambda n: None
) -> Iterator[BinaryIO]:
    """The file's (decompressed) bytes as a stream; ``advance`` hears of raw bytes read."""
    with open(path, "rb") as f:
        raw = io.BufferedReader(_Counting(f, advance), READ_BYTES)
        if compression == "gzip":
            yield gzip.GzipFile(fileobj=raw, mode="rb")
        elif compression == "zstd":
            import zstandard

            dctx = zstandard.ZstdDecompressor()
            yield dctx.stream_reader(raw, read_across_frames=True, closefd=False)
        else:
            yield raw


def _read(stream: BinaryIO, path: Path, size: int = READ_BYTES) -> bytes:
    try:
        return stream.read(size)
    except (OSError, EOFError, ValueError) as e:
        raise MiniGPTError(f"{path} is damaged or not really compressed ({e}); check it") from None
    except Exception as e:  # zstandard.ZstdError is not an OSError
        if type(e).__name__ == "ZstdError":
            raise MiniGPTError(f"{path} is damaged or not really zstd ({e}); check it") from None
        raise


def is_binary(path: Path, compression: str | None, encoding: str = "utf-8") -> bool:
    """A NUL byte in the first 8 KiB marks a binary file (text encodings never use it)."""
    if encoding.lower().replace("_", "-").startswith(("utf-16", "utf-32")):
        return False
    with open_binary(path, compression) as stream:
        return b"\0" in _read(stream, path, 8192)


def _decoded_chunks(stream: BinaryIO, path: Path, encoding: str, errors: str) -> Iterator[str]:
    """Decode a byte stream in chunks; a bad byte is reported with its offset in the file."""
    try:
        decoder = codecs.getincrementaldecoder(encoding)(errors)
    except LookupError:
        raise MiniGPTError(f"unknown encoding {encoding!r}; e.g. --encoding utf-8") from None
    consumed = 0
    while True:
        data = _read(stream, path)
        pending = len(decoder.getstate()[0])
        try:
            text = decoder.decode(data, final=not data)
        except UnicodeDecodeError as e:
            raise MiniGPTError(
                f"{path} is not valid {encoding} (byte offset {consumed - pending + e.start}); "
                "pass --encoding with the file's real encoding (e.g. --encoding latin-1) or "
                "--errors replace"
            ) from None
        consumed += len(data)
        if text:
            yield text
        if not data:
            return


def _text_pieces(chunks: Iterator[str], source: str, paragraphs: bool) -> Iterator[Piece]:
    """Documents of a text stream: the whole file, or each blank-line separated paragraph."""
    buffer, first, yielded = "", True, False
    for chunk in chunks:
        buffer += chunk
        if paragraphs:
            *parts, buffer = BLANK_LINES.split(buffer)
            for part in parts:
                if part.strip() or not first:
                    yield Piece(part, source, first, True)
                    yielded = True
                first = True
        while len(buffer) > PIECE_CHARS:
            cut = _cut(buffer)
            yield Piece(buffer[:cut], source, first, False)
            buffer, first, yielded = buffer[cut:], False, True
    if buffer.strip() or not first or not yielded:
        yield Piece(buffer, source, first, True)


def _cut(text: str) -> int:
    """The last safe place to cut ``text`` within its first PIECE_CHARS characters.

    Text without spaces or single line breaks (e.g. long runs of CJK) is cut anywhere: the
    tokens next to that one cut may differ from encoding the document whole.
    """
    start = PIECE_CHARS // 2
    last = None
    for last in SAFE_CUT.finditer(text, start, PIECE_CHARS):  # noqa: B007
        pass
    return last.start() if last else PIECE_CHARS


def jsonl_records(lines: Iterable[str], path: Path, undecodable: str) -> Iterator[tuple[int, Any]]:
    """(line number, record) for each non-blank line of a JSON-lines text. A line that is not
    JSON, or bytes that do not decode (``undecodable`` says what then), is one error that
    names the line."""
    lineno = 0
    try:
        for lineno, line in enumerate(lines, 1):  # noqa: B007
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise MiniGPTError(
                    f"{path}:{lineno} is not valid JSON ({e.msg}); fix or remove that line"
                ) from None
            yield lineno, record
    except UnicodeDecodeError:
        raise MiniGPTError(f"{path}:{lineno + 1} {undecodable}") from None


def _jsonl_pieces(stream: BinaryIO, path: Path, opts: SourceOptions) -> Iterator[Piece]:
    lines = io.TextIOWrapper(stream, encoding=opts.encoding, errors=opts.errors, newline="\n")
    undecodable = (
        f"is not valid {opts.encoding}; pass --encoding with the file's real encoding "
        "or --errors replace"
    )
    try:
        for lineno, record in jsonl_records(lines, path, undecodable):
            yield Piece(_field(record, path, lineno, opts.text_field), f"{path}:{lineno}")
    except LookupError:
        raise MiniGPTError(f"unknown encoding {opts.encoding!r}; e.g. --encoding utf-8") from None


def _field(record: object, path: Path, lineno: int, name: str) -> str:
    if not isinstance(record, dict):
        raise MiniGPTError(f"{path}:{lineno} is not a JSON object; each line must be one")
    if name not in record:
        raise MiniGPTError(
            f"{path}:{lineno} has no field {name!r}{suggest(name, record)} "
            f"(fields: {', '.join(map(str, record))}); choose one with --text-field"
        )
    value = record[name]
    if value is None:
        return ""
    if not isinstance(value, str):
        raise MiniGPTError(
            f"{path}:{lineno} field {name!r} holds {type(value).__name__}, not text; "
            "choose a text field with --text-field"
        )
    return value


def _parquet_pieces(
    path: Path, compression: str | None, opts: SourceOptions, advance: Callable[[int], None]
) -> Iterator[Piece]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise MiniGPTError(
            f"reading {path} needs pyarrow; pip install 'minigpt[parquet]'"
        ) from None

    size = path.stat().st_size
    if compression:
        with open_binary(path, compression) as stream:
            source = pa.BufferReader(stream.read())
    else:
        source = str(path)
    try:
        pf = pq.ParquetFile(source)
    except (pa.ArrowException, OSError) as e:
        raise MiniGPTError(f"{path} is not a readable parquet file ({e}); check it") from None
    names = pf.schema_arrow.names
    col = opts.text_field
    if col not in names:
        raise MiniGPTError(
            f"{path} has no column {col!r}{suggest(col, names)} (columns: {', '.join(names)}); "
            "choose one with --text-field"
        )
    kind = pf.schema_arrow.field(col).type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        raise MiniGPTError(
            f"{path} column {col!r} holds {kind}, not text; choose a text column with --text-field"
        )
    rows, total, done = 0, max(1, pf.metadata.num_rows), 0
    for batch in pf.iter_batches(batch_size=1024, columns=[col]):
        for value in batch.column(0).to_pylist():
            rows += 1
            yield Piece(value or "", f"{path}:row {rows}")
        step = size * rows // total - done
        done += step
        advance(step)
    advance(size - done)


def read_pieces(
    files: Sequence[Path],
    opts: SourceOptions | None = None,
    advance: Callable[[int], None] = lambda n: None,
) -> Iterator[Piece]:
    """Every document of every file, in order. Binary files are skipped (listed in
    ``opts.skipped``), or refused with ``opts.strict``."""
    opts = opts or SourceOptions()
    for path in files:
        kind, compression = file_format(path)
        if kind == "parquet":
            yield from _parquet_pieces(path, compression, opts, advance)
            continue
        if is_binary(path, compression, opts.encoding):
            if opts.strict:
                raise MiniGPTError(
                    f"{path} looks binary (it holds NUL bytes); remove it from the inputs, "
                    "or leave out --strict to skip such files with a warning"
                )
            if str(path) not in opts.skipped:
                opts.skipped.append(str(path))
            advance(path.stat().st_size)
            continue
        with open_binary(path, compression, advance) as stream:
            if kind == "jsonl":
                yield from _jsonl_pieces(stream, path, opts)
            else:
                chunks = _decoded_chunks(stream, path, opts.encoding, opts.errors)
                yield from _text_pieces(chunks, str(path), opts.paragraphs)
