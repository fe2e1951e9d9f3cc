"""Reading a corpus: files and folders become a stream of documents.

Formats go by suffix: ``.txt .md .text .rst`` (one document per file, or one per blank-line
separated paragraph), ``.jsonl`` (one per record, a chosen field), ``.parquet`` (one per row, a
chosen column), and ``.gz`` / ``.zst`` compressed versions of each. Everything streams: a file
is never read whole, so a corpus of any size reads in constant memory (``decode.py`` turns the
bytes into text: encodings, byte-order marks, line ends, NUL bytes, JSON lines).

Folders are walked following links to folders, but each real folder is entered once: a link
loop, or a second path to a folder already read, is listed in the report and not followed, so
the walk always ends and nothing is read twice. A file that changes while it is read (its size
or modification time differs before and after, or between two passes) stops ``prepare`` with
one line saying to re-run: the dataset would not match any state of the file.

A text document longer than ``PIECE_CHARS`` arrives in several pieces, cut just before a space
that follows a non-space and precedes a letter. Byte-level BPE's pre-tokenizer splits there
anyway, so encoding the pieces gives the same ids as encoding the whole document.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, NamedTuple

from minigpt.config import suggest
from minigpt.data.decode import decoded_chunks, is_binary, jsonl_records, open_binary
from minigpt.data.read_notes import FileNotes, ReadNotes
from minigpt.errors import MiniGPTError

TEXT_SUFFIXES = {".txt", ".md", ".text", ".rst"}
JSONL_SUFFIXES = {".jsonl", ".ndjson"}
PARQUET_SUFFIXES = {".parquet"}
COMPRESSIONS = {".gz": "gzip", ".zst": "zstd"}
PIECE_CHARS = 4_000_000
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
    skip_bad_lines: bool = False
    notes: ReadNotes = field(default_factory=ReadNotes)


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


def _walk(folder: Path, not_followed: list[str]) -> list[Path]:
    """Every file under ``folder``, in sorted order, following links to folders but entering
    each real folder once (see the module docstring); what is not followed is listed."""
    files, seen, stack = [], set(), [folder]
    while stack:
        here = stack.pop()
        try:
            st = here.stat()
            entries = sorted(os.scandir(here), key=lambda e: e.name, reverse=True)
        except OSError as e:
            not_followed.append(f"{here} ({e.strerror})")
            continue
        if (st.st_dev, st.st_ino) in seen:
            not_followed.append(f"{here} (a folder already read: a link loop or second path)")
            continue
        seen.add((st.st_dev, st.st_ino))
        for entry in entries:
            path = Path(entry.path)
            try:
                if entry.is_dir():
                    stack.append(path)
                elif entry.is_file():
                    files.append(path)
                elif entry.is_symlink():
                    not_followed.append(f"{path} (a broken link or link loop)")
            except OSError as e:
                not_followed.append(f"{path} ({e.strerror})")
    return sorted(files)


def find_inputs(
    inputs: Sequence[str | Path],
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    not_followed: list[str] | None = None,
) -> list[Path]:
    """Files given directly, plus those found in folders (recursively, in sorted order).

    In folders, ``include`` globs (default: every known format) choose files and ``exclude``
    globs drop them; both match the path relative to the folder or the bare file name. Links
    in folders that are not followed (loops, broken) are listed in ``not_followed``.
    """
    if not inputs:
        raise MiniGPTError("no input given; pass one or more text files or folders")
    files: list[Path] = []
    not_followed = not_followed if not_followed is not None else []
    for item in map(Path, inputs):
        if item.is_dir():
            found = []
            for path in _walk(item, not_followed):
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
            cut = _cut(buffer, PIECE_CHARS)
            yield Piece(buffer[:cut], source, first, False)
            buffer, first, yielded = buffer[cut:], False, True
    if buffer.strip() or not first or not yielded:
        yield Piece(buffer, source, first, True)


def _cut(text: str, limit: int) -> int:
    """The last safe place to cut ``text`` within its first ``limit`` characters.

    Text without spaces or single line breaks (e.g. long runs of CJK) is cut anywhere: the
    tokens next to that one cut may differ from encoding the document whole.
    """
    last = None
    for last in SAFE_CUT.finditer(text, limit // 2, limit):  # noqa: B007
        pass
    return last.start() if last else limit


def split_text(text: str, limit: int) -> Iterator[str]:
    """``text`` in parts of at most ``limit`` characters, cut where byte-level BPE's
    pre-tokenizer splits anyway. BPE training uses this: the tokenizers library's trainer
    needs about 2.5x the memory on 4M-character texts than on short ones (one-line files),
    and the parts give it the same words to count."""
    while len(text) > limit:
        cut = _cut(text, limit)
        yield text[:cut]
        text = text[cut:]
    yield text


def _jsonl_pieces(
    stream: BinaryIO, path: Path, opts: SourceOptions, notes: FileNotes
) -> Iterator[Piece]:
    records = jsonl_records(stream, path, opts.encoding, opts.errors, opts.skip_bad_lines, notes)
    for lineno, record in records:
        yield Piece(_field(record, path, lineno, opts.text_field), f"{path}:{lineno}")


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
        opts.notes.check_unchanged(path)
        notes = opts.notes.files[str(path)] = FileNotes()
        kind, compression = file_format(path)
        if kind == "parquet":
            yield from _parquet_pieces(path, compression, opts, advance)
            opts.notes.check_unchanged(path)
            continue
        if is_binary(path, compression, opts.encoding):
            if opts.strict:
                raise MiniGPTError(
                    f"{path} looks binary (it holds NUL bytes); remove it from the inputs, "
                    "or leave out --strict to skip such files with a warning (UTF-16 without a "
                    "byte-order mark? pass --encoding utf-16-le or utf-16-be)"
                )
            if str(path) not in opts.skipped:
                opts.skipped.append(str(path))
            advance(path.stat().st_size)
            continue
        with open_binary(path, compression, advance) as stream:
            if kind == "jsonl":
                yield from _jsonl_pieces(stream, path, opts, notes)
            else:
                chunks = decoded_chunks(stream, path, opts.encoding, opts.errors, notes)
                yield from _text_pieces(chunks, str(path), opts.paragraphs)
        opts.notes.check_unchanged(path)
