"""Choosing the tokenizer of a dataset: reuse a given one, or train a ``char`` or ``bpe`` one on
a seeded sample of the cleaned corpus (``minigpt prepare`` and ``minigpt tokenizer train``)."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from pathlib import Path

from minigpt.data.clean import CleanConfig
from minigpt.data.defaults import TOKENIZER_SAMPLE_BYTES
from minigpt.data.encode import Pool, batches
from minigpt.data.hf_tokenizer import HF_PREFIX, load_hf_tokenizer
from minigpt.data.meta import SEPARATOR
from minigpt.data.plan import Plan, Progress, empty_corpus, make_plan
from minigpt.data.sources import SourceOptions, read_pieces, split_text
from minigpt.data.tokenizer import (
    TOKENIZERS,
    BPETokenizer,
    CharTokenizer,
    Tokenizer,
    check_vocab_size,
    load_tokenizer,
)
from minigpt.errors import MiniGPTError

TRAIN_TEXT_CHARS = 100_000


def existing_tokenizer(tokenizer: str | Path | Tokenizer, unknown: str) -> Tokenizer | None:
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


def train_from_sample(
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
            yield from split_text(text, TRAIN_TEXT_CHARS)  # bounded memory in BPE training
        if sample[1] > 1 and kind == "char":
            yield SEPARATOR  # char datasets put a blank line between documents

    if kind == "char":
        seen: set[str] = set()
        for text in texts():
            seen.update(text)
        if not sample[0]:
            raise empty_corpus(plan)
        tok = CharTokenizer(sorted(seen), unknown=unknown)
    else:
        tok = BPETokenizer.train(texts(), vocab_size, show_progress=plan.progress)
        if sample[0] == 0:
            raise empty_corpus(plan)
    return tok, sample[0]


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
    plan = make_plan(inputs, sources or SourceOptions(), clean, seed, workers, progress, quiet)
    with Pool(plan.workers) as pool:
        tok, sample = train_from_sample(pool, plan, kind, vocab_size, unknown, sample_bytes)
    path = Path(out)
    (path.parent if path.suffix == ".json" else path).mkdir(parents=True, exist_ok=True)
    saved = tok.save(path)
    if not quiet:
        print(
            f"trained {tok.kind} tokenizer, vocab {tok.vocab_size:,}, on {sample:,} bytes: {saved}"
        )
    return saved
