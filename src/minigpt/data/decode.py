"""Bytes to text for ``prepare``: byte-order marks, chunked decoding, line ends, NUL bytes,
JSON lines. Each choice is what a user who cares about the corpus would expect:

- A byte-order mark says the encoding. A UTF-8 BOM is dropped (never trained on); UTF-16 and
  UTF-32 files (LE or BE) are decoded by their BOM whatever UTF encoding was asked for (the
  default ``utf-8`` included). An explicit 8-bit encoding (``latin-1``, ``cp1251``, ...) is
  kept: in those, the same bytes are ordinary characters. The report lists such files.
- Line ends: CRLF and lone CR become ``\\n`` in text files, counted in the report, so a corpus
  written on Windows or an old Mac tokenizes like one written on Linux.
- NUL bytes: text never holds them. One in the first 8 KiB marks a binary file (``sources``
  skips it with a warning, or refuses it with ``--strict``). One further on means a damaged
  file (zero-filled after a crash) or UTF-16/32 without a BOM; silently training on it, or
  silently dropping it, would hide that, so it is an error naming the file and the byte
  offset, unless ``--errors replace`` asked for leniency: then NUL bytes are dropped and
  counted.
- Chunking: streams are read ``READ_BYTES`` at a time. The incremental decoder keeps a
  character split between two reads, and a CR ending a read waits for the next one, so the
  text (and so the tokens) never depends on where the reads fall.
- JSON lines are split on raw ``\\n`` bytes and decoded one line at a time, so a bad line (not
  JSON, or undecodable) is reported with its real number, or skipped and counted with
  ``skip_bad``.
"""

from __future__ import annotations

import codecs
import gzip
import io
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from itertools import chain
from pathlib import Path
from typing import Any, BinaryIO

from minigpt.data.read_notes import FileNotes
from minigpt.errors import MiniGPTError

READ_BYTES = 1 << 20
BINARY_SNIFF_BYTES = 8192
BOMS = (  # UTF-32 LE first: its BOM starts with UTF-16 LE's
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
WIDE = ("utf-16", "utf-32")


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
    try:
        f = open(path, "rb")  # noqa: SIM115 (closed below)
    except OSError as e:
        raise MiniGPTError(
            f"cannot read {path} ({e.strerror}); check it and its permissions"
        ) from None
    with f:
        raw = io.BufferedReader(_Counting(f, advance), READ_BYTES)
        if compression == "gzip":
            yield gzip.GzipFile(fileobj=raw, mode="rb")
        elif compression == "zstd":
            import zstandard

            dctx = zstandard.ZstdDecompressor()
            yield dctx.stream_reader(raw, read_across_frames=True, closefd=False)
        else:
            yield raw


def read_bytes(stream: BinaryIO, path: Path, size: int | None = None) -> bytes:
    """Up to ``size`` (default ``READ_BYTES``) bytes; a damaged stream is one clear error."""
    try:
        return stream.read(size or READ_BYTES)
    except (OSError, EOFError, ValueError) as e:
        raise MiniGPTError(f"{path} is damaged or not really compressed ({e}); check it") from None
    except Exception as e:  # zstandard.ZstdError is not an OSError
        if type(e).__name__ == "ZstdError":
            raise MiniGPTError(f"{path} is damaged or not really zstd ({e}); check it") from None
        raise


def codec_name(encoding: str) -> str:
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise MiniGPTError(f"unknown encoding {encoding!r}; e.g. --encoding utf-8") from None


def sniff_bom(head: bytes, encoding: str) -> tuple[str, int]:
    """The codec to decode with and the length of the byte-order mark to skip."""
    name = codec_name(encoding)
    if not name.startswith("utf-"):
        return name, 0
    for bom, codec in BOMS:
        if head.startswith(bom):
            return codec, len(bom)
    return ("utf-8" if name == "utf-8-sig" else name), 0


def _head(stream: BinaryIO, path: Path, n: int) -> bytes:
    """The first ``n`` bytes (fewer only at the end of the stream)."""
    head = b""
    while len(head) < n and (more := read_bytes(stream, path, n - len(head))):
        head += more
    return head


def is_binary(path: Path, compression: str | None, encoding: str = "utf-8") -> bool:
    """A NUL byte in the first 8 KiB marks a binary file, unless the encoding (asked for, or
    said by a BOM) is UTF-16/32, where NUL bytes are ordinary."""
    with open_binary(path, compression) as stream:
        head = _head(stream, path, BINARY_SNIFF_BYTES)
    return not sniff_bom(head, encoding)[0].startswith(WIDE) and b"\0" in head


def _start(stream: BinaryIO, path: Path, encoding: str, notes: FileNotes) -> tuple[str, bytes, int]:
    """Sniff the BOM: (codec, the first bytes after it, how many bytes it took)."""
    head = _head(stream, path, 4)
    codec, skip = sniff_bom(head, encoding)
    notes.encoding, notes.bom = codec, skip > 0
    return codec, head[skip:] or read_bytes(stream, path), skip  # empty data means the end


def decoded_chunks(
    stream: BinaryIO, path: Path, encoding: str, errors: str, notes: FileNotes
) -> Iterator[str]:
    """The stream's text in chunks: BOM dropped, line ends normalised, NUL bytes refused (or
    dropped with ``errors="replace"``); a bad byte is reported with its offset in the file."""
    codec, data, consumed = _start(stream, path, encoding, notes)
    return _decode(stream, path, codec, errors, notes, data, consumed)


def _decode(
    stream: BinaryIO,
    path: Path,
    codec: str,
    errors: str,
    notes: FileNotes,
    data: bytes,
    consumed: int,
) -> Iterator[str]:
    decoder = codecs.getincrementaldecoder(codec)(errors)
    cr = False  # a CR ended the last chunk: it may be half of a CRLF
    while True:
        start = consumed - len(decoder.getstate()[0])  # file offset of the text decoded now
        try:
            text = decoder.decode(data, final=not data)
        except UnicodeDecodeError as e:
            raise MiniGPTError(
                f"{path} is not valid {codec} (byte offset {start + e.start}); "
                "pass --encoding with the file's real encoding (e.g. --encoding latin-1) or "
                "--errors replace"
            ) from None
        consumed += len(data)
        if "\0" in text:
            text = _drop_nul(text, path, codec, errors, notes, start)
        if cr:
            text = "\r" + text
        cr = bool(data) and text.endswith("\r")
        if cr:
            text = text[:-1]
        if "\r" in text:
            notes.crlf += text.count("\r\n")
            text = text.replace("\r\n", "\n")
            notes.cr += text.count("\r")
            text = text.replace("\r", "\n")
        if text:
            yield text
        if not data:
            return
        data = read_bytes(stream, path)


def _drop_nul(text: str, path: Path, codec: str, errors: str, notes: FileNotes, start: int) -> str:
    if errors == "strict":
        offset = start + len(text[: text.index("\0")].encode(codec))
        raise MiniGPTError(
            f"{path} holds a NUL byte at byte offset {offset}, which text never does: it is "
            "binary, damaged, or UTF-16/32 without a byte-order mark (then pass e.g. "
            "--encoding utf-16-le); fix or remove it, or pass --errors replace to drop NUL bytes"
        )
    notes.nul_removed += text.count("\0")
    return text.replace("\0", "")


def _byte_lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Lines split on ``\\n``; a line spanning many chunks is joined once, not re-copied."""
    parts: list[bytes] = []
    for chunk in chunks:
        if b"\n" not in chunk:
            parts.append(chunk)
            continue
        lines = chunk.split(b"\n")
        parts.append(lines[0])
        lines[0] = b"".join(parts)
        parts = [lines.pop()]
        yield from lines
    tail = b"".join(parts)
    if tail:
        yield tail


def jsonl_records(
    stream: BinaryIO,
    path: Path,
    encoding: str = "utf-8",
    errors: str = "strict",
    skip_bad: bool = False,
    notes: FileNotes | None = None,
) -> Iterator[tuple[int, Any]]:
    """(line number, record) for each non-blank line of a JSON-lines stream. A line that is
    not JSON, or does not decode, is an error naming its real line number; with
    ``skip_bad`` it is skipped and counted in ``notes`` instead."""
    notes = notes if notes is not None else FileNotes()
    codec, data, consumed = _start(stream, path, encoding, notes)
    if codec.startswith(WIDE):  # "\n" is not one byte there: decode first, split UTF-8
        text = _decode(stream, path, codec, errors, notes, data, consumed)
        chunks, codec = (t.encode("utf-8") for t in text), "utf-8"
    else:
        chunks = chain([data], iter(lambda: read_bytes(stream, path), b""))

    def bad(lineno: int, why: str) -> None:
        if not skip_bad:
            raise MiniGPTError(
                f"{path}:{lineno} {why}; fix or remove that line, or pass --skip-bad-lines to "
                "skip such lines (counted in the report)"
            )
        notes.bad_line(lineno)

    for lineno, line in enumerate(_byte_lines(chunks), 1):
        try:
            text = line.decode(codec, errors)
        except UnicodeDecodeError as e:
            bad(lineno, f"is not valid {codec} (byte {e.start + 1} of the line)")
            continue
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as e:
            bad(lineno, f"is not valid JSON ({e.msg})")
            continue
        yield lineno, record
