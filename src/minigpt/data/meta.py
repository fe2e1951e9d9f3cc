"""The dataset folder's format: ``meta.json`` and what it records, the token dtype, the
separator between documents. Read by training (``dataset.py``) and evaluation as well as
written by ``prepare``, so it depends on nothing else in the data package.

A dataset folder holds:

- token shards per split (``train.bin`` / ``val.bin``, or ``train-00000.bin``, ... for large
  outputs; see ``shards.py``): flat little-endian ids (uint16 when the vocabulary fits, else
  uint32), read by training through numpy memmaps, so the corpus never sits in RAM;
- ``tokenizer.json``: the tokenizer that produced the ids;
- ``meta.json``: what the folder holds, where it came from, and the dataset report.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from minigpt.errors import MiniGPTError, out_of_room

META_FILE = "meta.json"
SPLITS = ("train", "val")
# Between documents when the tokenizer has no end-of-document token (``char``): a blank line.
SEPARATOR = "\n\n"


@dataclass
class SourceFile:
    path: str
    bytes: int
    sha256: str


@dataclass
class SplitInfo:
    files: list[str]
    tokens: int
    chars: int
    bytes: int
    documents: int = 0


@dataclass
class DatasetMeta:
    """The contents of ``meta.json``."""

    tokenizer: dict
    dtype: str
    splits: dict[str, SplitInfo]
    sources: list[SourceFile]
    val_fraction: float
    created: str
    minigpt_version: str
    format: str = "minigpt-dataset"
    version: int = 1
    extra: dict = field(default_factory=dict)
    report: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        from dataclasses import asdict

        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> DatasetMeta:
        data = dict(data)
        data["splits"] = {k: SplitInfo(**v) for k, v in data["splits"].items()}
        data["sources"] = [SourceFile(**s) for s in data["sources"]]
        return cls(**data)


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 when every id fits in 16 bits (half the disk and memory), else uint32."""
    return np.dtype("<u2") if vocab_size <= 2**16 else np.dtype("<u4")


def check_output_folder(out: Path, force: bool) -> None:
    """Refuse to overwrite something that is not a dataset, or a different one, without --force."""
    if force or not out.exists():
        return
    if not out.is_dir():
        raise MiniGPTError(f"{out} exists and is not a folder; choose another --out")
    if not any(out.iterdir()):
        return
    raise MiniGPTError(
        f"{out} already holds {'a dataset' if (out / META_FILE).exists() else 'other files'}; "
        "choose another --out or pass --force to replace it"
    )


def source_files(files: Sequence[Path]) -> list[SourceFile]:
    """Size and SHA-256 of each input, so a dataset records exactly what it was made from."""
    out = []
    for path in files:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 22):
                digest.update(chunk)
        out.append(SourceFile(str(path), path.stat().st_size, digest.hexdigest()))
    return out


@contextmanager
def staged(out: Path) -> Iterator[Path]:
    """A temporary folder next to ``out`` to build a dataset in (then ``publish`` it), removed
    whatever happens. A write that runs out of room (disk full, quota, ``ulimit -f``) becomes
    one line saying where and how much was written; ``out`` is untouched until ``publish``."""
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
    except OSError as e:
        written = sum(f.stat().st_size for f in tmp.rglob("*") if f.is_file())
        why = out_of_room(e, e.filename or tmp)
        if why is None:
            raise
        kept = f"{out} is as it was" if out.exists() else f"nothing was written to {out}"
        raise MiniGPTError(
            f"{why} after writing {written:,} bytes of the dataset; {kept}. Free some space "
            "or choose an --out on another disk, then re-run prepare"
        ) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def publish(tmp: Path, out: Path, meta: DatasetMeta) -> None:
    """Write ``meta.json`` last, then put the finished folder in place of ``out`` by renames
    (the old one is moved aside first and deleted after): a run killed at any moment leaves
    the old dataset or the new one, never neither (at worst the old one as ``.OUT.old``)."""
    (tmp / META_FILE).write_text(
        json.dumps(meta.to_json(), indent=2, ensure_ascii=False), encoding="utf-8"
    )
    old = out.with_name(f".{out.name}.old")
    if out.exists():
        shutil.rmtree(old, ignore_errors=True)
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)


def format_report(out: Path, meta: DatasetMeta) -> str:
    """The dataset report as a few readable lines."""
    r = meta.report
    lines = [
        f"prepared {out}: {meta.tokenizer['kind']} tokenizer, vocab "
        f"{meta.tokenizer['vocab_size']:,}, {meta.dtype}, split by {r['split']}"
    ]
    for name, s in meta.splits.items():
        lines.append(
            f"  {name:5s} {s.documents:>10,} docs {s.chars:>14,} chars {s.bytes:>14,} bytes "
            f"{s.tokens:>14,} tokens ({s.bytes / max(1, s.tokens):.2f} bytes/token, "
            f"{len(s.files)} file{'s' if len(s.files) > 1 else ''})"
        )
    d, c = r["documents"], r["cleaning"]
    lines.append(
        f"  documents: {d['read']:,} read, {d['kept']:,} kept; dropped {d['empty']:,} empty, "
        f"{d['duplicates']:,} duplicates, {d['too_short']:,} too short"
    )
    lines.append(
        f"  cleaning: {c['mojibake_fixed']:,} mojibake repaired, {c['nfc_changed']:,} NFC "
        f"normalised, {c['control_chars_removed']:,} control characters removed"
    )
    if r.get("reading", {}).get("summary"):
        lines.append(f"  reading: {r['reading']['summary']}")
    repaired = c.get("mojibake_lines", {})
    if repaired:
        undone = ", ".join(
            label if len(repaired) == 1 else f"{label}: {n:,}" for label, n in repaired.items()
        )
        lost = c.get("mojibake_lost", 0)
        lines.append(
            f"  mojibake: {sum(repaired.values()):,} lines repaired ({undone})"
            + (f"; {lost:,} characters beyond repair (U+FFFD)" if lost else "")
        )
    if "unknown_chars" in r:
        lines.append(f"  characters outside the vocabulary (<unk>): {r['unknown_chars']:,}")
    if v := r.get("vocabulary"):  # see vocab_check.py
        lines.append(
            f"  vocabulary: {v['tokens_per_entry']:,.0f} training tokens per entry, "
            f"{v['rare_entries']:,} of {v['learned_entries']:,} learned entries seen "
            f"<= {v['rare_count']} times in training"
        )
        if v["advice"]:
            lines.append(f"  advice: {v['advice']}")
    top = ", ".join(f"{t['text']!r}" for t in r["top_tokens"])
    lines.append(f"  top tokens: {top}")
    lines.append(f"  time: {r['seconds']['total']:.1f} s")
    return "\n".join(lines)
