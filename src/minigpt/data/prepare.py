"""``minigpt prepare``: raw text becomes a dataset folder ready for training.

A dataset folder is described in ``meta.py`` (the format), ``shards.py`` (the token files) and
``tokenizer.py``.

The pipeline streams: documents are read (``sources.py``), cleaned and encoded on every core
(``clean.py``, ``encode.py``) and appended to the shards in input order (``writer.py``), with the tokenizer's
end-of-document token (or a blank line, for ``char``) between documents. A tokenizer that needs
training first learns from a sample of the cleaned documents (``tokenizer_training.py``).

Splits: ``documents`` puts whole documents in val, one in every ``1 / val_fraction`` from a
seeded offset, deterministically. ``tail`` is the classic char-level split: the last
``val_fraction`` of the token stream (of the characters, for ``char``). ``auto`` (the default)
is ``tail`` for ``char`` and ``documents`` otherwise, falling back to ``tail`` when there are
too few documents for val to get one.

The folder is written under a temporary name and renamed at the end, so an interrupted prepare
never leaves something that looks like a complete dataset, and a disk that fills leaves the
old dataset as it was (with one line saying so; ``meta.staged``). Inputs that change while
they are read stop the run before anything is published (``sources.py``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path

from minigpt._version import __version__
from minigpt.data.clean import CleanConfig
from minigpt.data.defaults import SHARD_TOKENS
from minigpt.data.encode import Pool
from minigpt.data.meta import (
    DatasetMeta,
    check_output_folder,
    format_report,
    publish,
    source_files,
    staged,
)
from minigpt.data.plan import make_plan
from minigpt.data.sources import SourceOptions
from minigpt.data.tokenizer import TOKENIZER_FILE, Tokenizer, check_vocab_size
from minigpt.data.tokenizer_training import (
    TOKENIZER_SAMPLE_BYTES,
    existing_tokenizer,
    train_from_sample,
)
from minigpt.data.writer import SplitWriter, encode_corpus
from minigpt.errors import MiniGPTError

SPLIT_MODES = ("auto", "documents", "tail")


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
    skip_bad_lines: bool = False,
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
    if str(tokenizer) == "auto":  # the probe trains models: a layer above data
        raise MiniGPTError("tokenizer 'auto' is minigpt.prepare_auto (prepare --tokenizer auto)")
    out = Path(out_dir)
    check_output_folder(out, force)
    tok = existing_tokenizer(tokenizer, unknown)
    kind = tok.kind if tok is not None else str(tokenizer)
    if tok is None and kind == "bpe":
        check_vocab_size(vocab_size)
    sources = SourceOptions(
        include, exclude, text_field, paragraphs, encoding, errors, strict,
        skip_bad_lines=skip_bad_lines,
    )  # fmt: skip
    plan = make_plan(inputs, sources, clean, seed, workers, progress, quiet)
    plan.split = split if split != "auto" else ("tail" if kind == "char" else "documents")
    plan.auto_split = split == "auto"
    plan.val_fraction, plan.shard_tokens = val_fraction, shard_tokens
    start = time.time()
    with staged(out) as tmp:
        with Pool(plan.workers) as pool:
            trained_at = time.time()
            if tok is None:
                tok, sample = train_from_sample(
                    pool, plan, kind, vocab_size, unknown, tokenizer_sample_bytes
                )
            else:
                sample = 0
            tok.save(tmp)
            trained = time.time() - trained_at
            writer = SplitWriter(tmp, tok, plan)
            encode_corpus(pool, plan, tmp / TOKENIZER_FILE, writer)
        splits, report = writer.finish()
        report.update(
            tokenizer_sample_bytes=sample,
            skipped_binary_files=plan.sources.skipped,
            reading=plan.sources.notes.report(),
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
        plan.sources.notes.check_files(plan.files)  # also while they were hashed
        publish(tmp, out, meta)
    if not quiet:
        if plan.sources.skipped:
            print(
                f"warning: skipped {len(plan.sources.skipped)} binary file(s): "
                f"{', '.join(plan.sources.skipped)}",
                file=sys.stderr,
            )
        print(format_report(out, meta))
    return out
