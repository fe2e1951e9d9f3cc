"""``minigpt prepare``: raw text becomes a dataset folder ready for training.

A dataset folder holds:

- token shards per split (``train.bin`` / ``val.bin``, or ``train-00000.bin``, ... for large
  outputs; see ``shards.py``): flat little-endian ids (uint16 when the vocabulary fits, else
  uint32), read by training through numpy memmaps, so the corpus never sits in RAM;
- ``tokenizer.json``: the tokenizer that produced the ids;
- ``meta.json``: what the folder holds, where it came from, and the dataset report.

The pipeline streams: documents are read (``sources.py``), cleaned and encoded on every core
(``clean.py``, ``encode.py``) and appended to the shards in input order, with the tokenizer's
end-of-document token (or a blank line, for ``char``) between documents. A tokenizer that needs
training first learns from a sample of the cleaned documents.

Splits: ``documents`` puts whole documents in val, one in every ``1 / val_fraction`` from a
seeded offset, deterministically. ``tail`` is the classic char-level split: the last
``val_fraction`` of the token stream (of the characters, for ``char``). ``auto`` (the default)
is ``tail`` for ``char`` and ``documents`` otherwise, falling back to ``tail`` when there are
too few documents for val to get one.

The folder is written under a temporary name and renamed at the end, so an interrupted prepare
never leaves something that looks like a complete dataset.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import random
import shutil
import sys
import time
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from minigpt._version import __version__
from minigpt.data.clean import CleanConfig
from minigpt.data.encode import Batch, Pool, batches, default_workers
from minigpt.data.hf_tokenizer import HF_PREFIX, load_hf_tokenizer
from minigpt.data.shards import SHARD_TOKENS, ShardWriter
from minigpt.data.sources import SourceOptions, find_inputs, read_pieces
from minigpt.data.tokenizer import (
    TOKENIZER_FILE,
    TOKENIZERS,
    BPETokenizer,
    CharTokenizer,
    Tokenizer,
    check_vocab_size,
    load_tokenizer,
)
from minigpt.errors import MiniGPTError

META_FILE = "meta.json"
SPLITS = ("train", "val")
SPLIT_MODES = ("auto", "documents", "tail")
TOKENIZER_SAMPLE_BYTES = 100_000_000
INLINE_BYTES = 4_000_000  # below this, one process is faster than starting workers


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


class Progress:
    """A tqdm bar over input bytes (MB/s and ETA), or nothing when quiet."""

    def __init__(self, total: int, desc: str, enabled: bool) -> None:
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(
                total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1000,
                file=sys.stderr, dynamic_ncols=True, leave=False,
            )  # fmt: skip

    def __call__(self, n: int) -> None:
        if self.bar is not None and n:
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@dataclass
class Plan:
    """Everything prepare needs to know, resolved from its arguments."""

    files: list[Path]
    sources: SourceOptions
    clean: CleanConfig
    seed: int
    workers: int
    total_bytes: int
    progress: bool
    split: str = "documents"
    auto_split: bool = False  # documents, or tail when val would get no document
    val_fraction: float = 0.1
    shard_tokens: int = SHARD_TOKENS


def _plan(
    inputs: Sequence[str | Path],
    sources: SourceOptions,
    clean: CleanConfig | None,
    seed: int,
    workers: int | None,
    progress: bool | None,
    quiet: bool,
) -> Plan:
    if sources.errors not in ("strict", "replace"):
        raise MiniGPTError(f"--errors must be 'strict' or 'replace', not {sources.errors!r}")
    if workers is not None and workers < 1:
        raise MiniGPTError(f"workers must be at least 1, got {workers}")
    files = find_inputs(inputs, sources.include, sources.exclude)
    total = sum(p.stat().st_size for p in files)
    return Plan(
        files=files,
        sources=sources,
        clean=clean or CleanConfig(),
        seed=seed,
        workers=workers or (1 if total < INLINE_BYTES else default_workers()),
        total_bytes=total,
        progress=(not quiet and sys.stderr.isatty()) if progress is None else progress,
    )


def prepare_dataset(
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    *,
    tokenizer: str | Path | Tokenizer = "char",
    val_fraction: float = 0.1,
    encoding: str = "utf-8",
    unknown: str = "error",
    force: bool = False,
    quiet: bool = False,
    vocab_size: int = 32000,
    tokenizer_sample_bytes: int = TOKENIZER_SAMPLE_BYTES,
    split: str = "auto",
    seed: int = 1337,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    text_field: str = "text",
    paragraphs: bool = False,
    errors: str = "strict",
    strict: bool = False,
    clean: CleanConfig | None = None,
    workers: int | None = None,
    shard_tokens: int = SHARD_TOKENS,
    progress: bool | None = None,
) -> Path:
    """Read, clean and tokenize ``inputs`` (files or folders) into the dataset ``out_dir``.

    ``tokenizer`` is a kind to train (``char``, ``bpe``; ``gpt2`` is fixed), a path to an
    existing ``tokenizer.json`` (or a folder holding one), ``hf:DIR`` (a Hugging Face model
    folder's tokenizer), or a Tokenizer. See the module
    docstring for the splits. Returns the dataset folder.
    """
    if not 0.0 < val_fraction < 1.0:
        raise MiniGPTError(f"val fraction must be between 0 and 1, got {val_fraction}")
    if split not in SPLIT_MODES:
        raise MiniGPTError(f"unknown split {split!r}; choose one of {', '.join(SPLIT_MODES)}")
    if shard_tokens < 1:
        raise MiniGPTError(f"shard size must be at least 1 token, got {shard_tokens}")
    out = Path(out_dir)
    check_output_folder(out, force)
    tok = _existing_tokenizer(tokenizer, unknown)
    kind = tok.kind if tok is not None else str(tokenizer)
    if tok is None and kind == "bpe":
        check_vocab_size(vocab_size)
    sources = SourceOptions(include, exclude, text_field, paragraphs, encoding, errors, strict)
    plan = _plan(inputs, sources, clean, seed, workers, progress, quiet)
    plan.split = split if split != "auto" else ("tail" if kind == "char" else "documents")
    plan.auto_split = split == "auto"
    plan.val_fraction, plan.shard_tokens = val_fraction, shard_tokens
    start = time.time()
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        with Pool(plan.workers) as pool:
            trained_at = time.time()
            if tok is None:
                tok, sample = _train_tokenizer(
                    pool, plan, kind, vocab_size, unknown, tokenizer_sample_bytes
                )
            else:
                sample = 0
            tok.save(tmp)
            trained = time.time() - trained_at
            writer = _Writer(tmp, tok, plan)
            _encode(pool, plan, tmp / TOKENIZER_FILE, writer)
        splits, report = writer.finish()
        report.update(
            tokenizer_sample_bytes=sample,
            skipped_binary_files=plan.sources.skipped,
            seconds={"tokenizer": round(trained, 3), "total": round(time.time() - start, 3)},
        )
        meta = DatasetMeta(
            tokenizer={
                "kind": tok.kind,
                "vocab_size": tok.vocab_size,
                "file": TOKENIZER_FILE,
                "fingerprint": tok.fingerprint(),
                "special_tokens": tok.special_tokens,
            },
            dtype=writer.dtype.name,
            splits=splits,
            sources=source_files(plan.files),
            val_fraction=val_fraction,
            created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            minigpt_version=__version__,
            extra={"seconds": report["seconds"]["total"], "split": plan.split, "seed": seed},
            report=report,
        )
        (tmp / META_FILE).write_text(
            json.dumps(meta.to_json(), indent=2, ensure_ascii=False), encoding="utf-8"
        )
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if not quiet:
        if plan.sources.skipped:
            print(
                f"warning: skipped {len(plan.sources.skipped)} binary file(s): "
                f"{', '.join(plan.sources.skipped)}",
                file=sys.stderr,
            )
        print(format_report(out, meta))
    return out


def _existing_tokenizer(tokenizer: str | Path | Tokenizer, unknown: str) -> Tokenizer | None:
    """The tokenizer to reuse, or None when one of kind ``tokenizer`` must be trained."""
    if isinstance(tokenizer, Tokenizer):
        return tokenizer
    if str(tokenizer).startswith(HF_PREFIX):
        return load_hf_tokenizer(str(tokenizer))
    if str(tokenizer) == "gpt2":
        return TOKENIZERS["gpt2"].from_json({"kind": "gpt2"})
    if str(tokenizer) in ("char", "bpe"):
        return None
    path = Path(tokenizer)
    if path.exists():
        tok = load_tokenizer(path)
        if isinstance(tok, CharTokenizer) and unknown != tok.unknown:
            tok = CharTokenizer(tok.chars, unknown=unknown)
        return tok
    raise MiniGPTError(
        f"unknown tokenizer {str(tokenizer)!r}; choose char, bpe or gpt2, or give the path "
        "of an existing tokenizer.json (or hf:DIR)"
    )


def _sampled(pool: Pool, plan: Plan, limit: int) -> Iterator[str]:
    """Cleaned documents for tokenizer training: a seeded random share of about ``limit``
    bytes, drawn from the whole corpus rather than its first files."""
    estimate = sum(
        p.stat().st_size * (4 if p.name.endswith((".gz", ".zst", ".parquet")) else 1)
        for p in plan.files
    )
    keep = min(1.0, limit / max(1, estimate))
    rng = random.Random(plan.seed)
    bar = Progress(plan.total_bytes, "sampling", plan.progress)
    pieces = (p for p in read_pieces(plan.files, plan.sources, bar) if rng.random() < keep)
    taken = 0
    try:
        for batch in pool.map(batches(pieces), plan.clean, None):
            for text in batch.texts:
                if taken >= limit:
                    return
                taken += len(text.encode("utf-8"))
                yield text
    finally:
        bar.close()


def _train_tokenizer(
    pool: Pool, plan: Plan, kind: str, vocab_size: int, unknown: str, limit: int
) -> tuple[Tokenizer, int]:
    """Train a ``char`` or ``bpe`` tokenizer on a sample of the cleaned corpus."""
    if limit < 1:
        raise MiniGPTError(f"tokenizer sample must be at least 1 byte, got {limit}")
    sample = [0, 0]  # bytes, documents

    def texts() -> Iterator[str]:
        for text in _sampled(pool, plan, limit):
            sample[0] += len(text.encode("utf-8"))
            sample[1] += 1
            yield text
        if sample[1] > 1 and kind == "char":
            yield SEPARATOR  # char datasets put a blank line between documents

    if kind == "char":
        seen: set[str] = set()
        for text in texts():
            seen.update(text)
        if not sample[0]:
            raise _empty_corpus(plan)
        tok = CharTokenizer(sorted(seen), unknown=unknown)
    else:
        tok = BPETokenizer.train(texts(), vocab_size, show_progress=plan.progress)
        if sample[0] == 0:
            raise _empty_corpus(plan)
    return tok, sample[0]


SEPARATOR = "\n\n"


def train_tokenizer(
    inputs: Sequence[str | Path],
    out: str | Path,
    *,
    kind: str = "bpe",
    vocab_size: int = 32000,
    sample_bytes: int = TOKENIZER_SAMPLE_BYTES,
    unknown: str = "error",
    sources: SourceOptions | None = None,
    clean: CleanConfig | None = None,
    seed: int = 1337,
    workers: int | None = None,
    progress: bool | None = None,
    quiet: bool = False,
) -> Path:
    """Train a tokenizer on cleaned text from ``inputs`` and save it, for reuse with
    ``prepare --tokenizer PATH``. ``out`` is a ``.json`` file or a folder; returns the file."""
    if kind not in ("bpe", "char"):
        raise MiniGPTError(f"can only train 'bpe' or 'char' tokenizers, not {kind!r}")
    if kind == "bpe":
        check_vocab_size(vocab_size)
    plan = _plan(inputs, sources or SourceOptions(), clean, seed, workers, progress, quiet)
    with Pool(plan.workers) as pool:
        tok, sample = _train_tokenizer(pool, plan, kind, vocab_size, unknown, sample_bytes)
    path = Path(out)
    (path.parent if path.suffix == ".json" else path).mkdir(parents=True, exist_ok=True)
    saved = tok.save(path)
    if not quiet:
        print(
            f"trained {tok.kind} tokenizer, vocab {tok.vocab_size:,}, on {sample:,} bytes: {saved}"
        )
    return saved


def _empty_corpus(plan: Plan) -> MiniGPTError:
    if len(plan.files) == 1:
        return MiniGPTError(f"{plan.files[0]} is empty; remove it from the inputs or add text")
    return MiniGPTError("the inputs hold no text after cleaning; check them, or --min-chars")


def _encode(pool: Pool, plan: Plan, tokenizer_path: Path, writer: _Writer) -> None:
    bar = Progress(plan.total_bytes, "encoding", plan.progress)
    try:
        pieces = read_pieces(plan.files, plan.sources, bar)
        for batch in pool.map(batches(pieces), plan.clean, str(tokenizer_path), writer.dtype.str):
            writer.add(batch)
    finally:
        bar.close()


class _Writer:
    """Takes encoded batches in order: drops empty, short and duplicate documents, picks each
    document's split, writes ids and separators to the shards, and counts for the report."""

    def __init__(self, folder: Path, tok: Tokenizer, plan: Plan) -> None:
        self.tok, self.plan = tok, plan
        self.dtype = token_dtype(tok.vocab_size)
        names = ("train",) if plan.split == "tail" else SPLITS
        self.shards = {s: ShardWriter(folder, s, self.dtype, plan.shard_tokens) for s in SPLITS}
        self.stats = {s: dict(documents=0, chars=0, bytes=0) for s in names}
        eot = tok.eot_id
        self.sep = np.array([eot], self.dtype) if eot is not None else None  # char: lazily
        self.sep_chars = 0 if eot is not None else len(SEPARATOR)
        self.seen: set[bytes] = set()
        self.dropped = dict(empty=0, too_short=0, duplicates=0)
        self.cleaning: dict[str, int] = {}
        self.token_counts = np.zeros(tok.vocab_size, dtype=np.int64)
        self.kept = 0
        self.read = 0
        self.skip = False  # inside a dropped multi-piece document
        self.current = "train"
        self.offset = random.Random(plan.seed).random()
        # where each train piece and document ends, to count chars and documents per split
        # when the tail of the stream becomes val
        self.piece_ends = [array("q"), array("q"), array("q")]  # tokens, chars, bytes
        self.doc_starts, self.doc_ends = array("q"), array("q")

    def _choose_split(self) -> str:
        """Val takes one document in every 1 / val_fraction, from a seeded offset."""
        if self.plan.split == "tail":
            return "train"
        f, i = self.plan.val_fraction, self.kept
        return "val" if int((i + 1) * f + self.offset) > int(i * f + self.offset) else "train"

    def _drop(self, batch: Batch, i: int) -> str | None:
        """Why a document is left out, or None. Parts of long documents are always kept."""
        piece = batch.pieces[i]
        if not (piece.first and piece.last):
            return None
        if batch.blank[i]:
            return "empty"
        if batch.chars[i] < self.plan.clean.min_chars:
            return "too_short"
        if self.plan.clean.dedupe:
            if batch.hashes[i] in self.seen:
                return "duplicates"
            self.seen.add(batch.hashes[i])
        return None

    def add(self, batch: Batch) -> None:
        for key, n in batch.counts.items():
            self.cleaning[key] = self.cleaning.get(key, 0) + n
        ends = np.cumsum([0, *batch.lengths])
        kept = []
        for i, piece in enumerate(batch.pieces):
            ids = batch.ids[ends[i] : ends[i + 1]]
            if piece.first:
                self.read += 1
                reason = self._drop(batch, i)
                self.skip = reason is not None
                if self.skip:
                    self.dropped[reason] += 1
                    continue
                self.current = self._choose_split()
                self._start_document(self.current)
            elif self.skip:
                continue
            self.shards[self.current].write(ids)
            kept.append(ids)
            stats = self.stats[self.current]
            stats["chars"] += batch.chars[i]
            stats["bytes"] += batch.nbytes[i]
            if self.current == "train":
                self._record_piece(piece.last)
        if kept:
            self.token_counts += np.bincount(
                np.concatenate(kept).astype(np.int64), minlength=self.tok.vocab_size
            )[: self.tok.vocab_size]

    def _start_document(self, split: str) -> None:
        stats = self.stats[split]
        if stats["documents"]:
            if self.sep is None:
                self.sep = np.asarray(self.tok.encode(SEPARATOR), self.dtype)
            self.shards[split].write(self.sep)
            stats["chars"] += self.sep_chars
            stats["bytes"] += self.sep_chars
            if split == "train":
                self._record_piece(False)
        stats["documents"] += 1
        self.kept += 1
        if split == "train":
            self.doc_starts.append(self.shards["train"].tokens)

    def _record_piece(self, last: bool) -> None:
        stats = self.stats["train"]
        tokens, chars, nbytes = self.piece_ends
        tokens.append(self.shards["train"].tokens)
        chars.append(stats["chars"])
        nbytes.append(stats["bytes"])
        if last:
            self.doc_ends.append(self.shards["train"].tokens)

    def finish(self) -> tuple[dict[str, SplitInfo], dict]:
        if self.kept == 0:
            raise _empty_corpus(self.plan)
        if self.plan.auto_split and self.stats.get("val", {}).get("documents", 1) == 0:
            self.plan.split = "tail"  # too few documents: every one went to train
            self.stats = {"train": self.stats["train"]}
        if self.plan.split == "tail":
            self._split_tail()
        splits = {}
        for name in SPLITS:
            files = self.shards[name].close()
            st = self.stats[name]
            splits[name] = SplitInfo(
                files, self.shards[name].tokens, st["chars"], st["bytes"], st["documents"]
            )
        self._check(splits)
        return splits, self._report(splits)

    def _split_tail(self) -> None:
        """The last val_fraction of the stream becomes val (chars and bytes counted exactly
        up to the piece the cut falls in, which is decoded)."""
        train = self.shards["train"]
        total = train.tokens
        keep = int(total * (1.0 - self.plan.val_fraction))
        tokens, chars, nbytes = self.piece_ends
        k = bisect.bisect_right(tokens, keep)
        start = tokens[k - 1] if k else 0
        text = self.tok.decode(train.read(start, keep).tolist()) if keep > start else ""
        text = text.rstrip("\ufffd")  # a character cut in two counts in val
        c = (chars[k - 1] if k else 0) + len(text)
        b = (nbytes[k - 1] if k else 0) + len(text.encode("utf-8"))
        whole = self.stats["train"]
        docs_train = bisect.bisect_left(self.doc_starts, keep)
        docs_val = len(self.doc_ends) - bisect.bisect_right(self.doc_ends, keep)
        self.stats = {
            "train": dict(documents=docs_train, chars=c, bytes=b),
            "val": dict(documents=docs_val, chars=whole["chars"] - c, bytes=whole["bytes"] - b),
        }
        train.move_tail(keep, self.shards["val"])

    def _check(self, splits: dict[str, SplitInfo]) -> None:
        if self.plan.split == "tail":
            if min(s.tokens for s in splits.values()) < 2:
                total = sum(s.tokens for s in splits.values())
                raise MiniGPTError(
                    f"corpus too small ({total} tokens) to split into train and val; add text"
                )
            return
        for name, info in splits.items():
            if info.documents == 0:
                raise MiniGPTError(
                    f"the {name} split got no documents ({self.kept} kept, val fraction "
                    f"{self.plan.val_fraction}); add documents, split text files on blank "
                    "lines with --paragraphs, or split the token stream with --split tail"
                )

    def _report(self, splits: dict[str, SplitInfo]) -> dict:
        tokens = sum(s.tokens for s in splits.values())
        nbytes = sum(s.bytes for s in splits.values())
        top = np.argsort(-self.token_counts, kind="stable")[:20]
        report = {
            "documents": {"read": self.read, "kept": self.kept, **self.dropped},
            "cleaning": {
                "mojibake_fixed": self.cleaning.get("mojibake_fixed", 0),
                "control_chars_removed": self.cleaning.get("control_chars_removed", 0),
                "nfc_changed": self.cleaning.get("nfc_changed", 0),
                "steps": {k: v for k, v in vars(self.plan.clean).items()},
            },
            "split": self.plan.split,
            "splits": {
                name: {**vars(s), "bytes_per_token": round(s.bytes / max(1, s.tokens), 3)}
                for name, s in splits.items()
            },
            "bytes_per_token": round(nbytes / max(1, tokens), 3),
            "top_tokens": [
                {
                    "id": int(i),
                    "text": self.tok.decode([int(i)]),
                    "count": int(self.token_counts[i]),
                }
                for i in top
                if self.token_counts[i]
            ],
        }
        if isinstance(self.tok, CharTokenizer) and self.tok.unk_id is not None:
            report["unknown_chars"] = int(self.token_counts[self.tok.unk_id])
        return report


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
    if "unknown_chars" in r:
        lines.append(f"  characters outside the vocabulary (<unk>): {r['unknown_chars']:,}")
    top = ", ".join(f"{t['text']!r}" for t in r["top_tokens"])
    lines.append(f"  top tokens: {top}")
    lines.append(f"  time: {r['seconds']['total']:.1f} s")
    return "\n".join(lines)
