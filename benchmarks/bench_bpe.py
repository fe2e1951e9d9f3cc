"""Byte-level BPE: training speed, and encoding speed of minigpt's path vs tokenizers' own.

    PYTHONPATH=src python benchmarks/bench_bpe.py [--train-mb 100] [--encode-mb 20]

Trains a 32,000-token tokenizer on ``--train-mb`` of synthetic text (see corpus.py), then
encodes ``--encode-mb`` of other text three ways, side by side in one run, taking the best of
``--rounds`` alternating rounds (the machine is shared, so timings are noisy):

- tokenizers: Hugging Face ``Tokenizer.encode_batch`` (its own threads);
- tiktoken: ``BPETokenizer.encode_batch``, the tiktoken Encoding built from the same merges
  (threads), i.e. what minigpt uses;
- prepare workers: minigpt's ``encode.Pool`` (cleaning + encoding in worker processes, one per
  core), the path ``minigpt prepare`` runs.

It checks that all three give identical ids, and prints a markdown table for BENCHMARKS.md.
Besides wall-clock MB/s it reports MB per CPU second (threads and worker processes
included), which contention on a shared machine barely changes; twice that is what two free
cores would reach with perfect scaling.
"""

from __future__ import annotations

import argparse
import os
import resource
import time

import numpy as np

import corpus
from minigpt.data.clean import CleanConfig, clean_text
from minigpt.data.encode import Pool, batches, default_workers
from minigpt.data.sources import Piece
from minigpt.data.tokenizer import BPETokenizer


def cpu_seconds() -> float:
    """CPU time of this process (all threads) and of its finished child processes."""
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def timed(fn):
    start, cpu = time.perf_counter(), cpu_seconds()
    result = fn()
    return result, time.perf_counter() - start, cpu_seconds() - cpu


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train-mb", type=float, default=100)
    p.add_argument("--encode-mb", type=float, default=20)
    p.add_argument("--vocab-size", type=int, default=32000)
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()
    pool = corpus.line_pool()
    train_docs = list(corpus.documents(int(args.train_mb * 1e6), seed=1, pool=pool))
    train_mb = sum(len(d.encode()) for d in train_docs) / 1e6
    start = time.perf_counter()
    tok = BPETokenizer.train(train_docs, vocab_size=args.vocab_size)
    train_s = time.perf_counter() - start
    del train_docs
    print(f"training: {train_mb:.1f} MB in {train_s:.1f} s, vocab {tok.vocab_size}")

    docs = list(corpus.documents(int(args.encode_mb * 1e6), seed=2, pool=pool))
    mb = sum(len(d.encode()) for d in docs) / 1e6
    path = str(tok.save("/tmp"))
    workers = default_workers()
    no_clean = CleanConfig(fix_mojibake=False, control_chars=False, nfc=False)

    def hf():
        return [e.ids for e in tok.hf.encode_batch(docs, add_special_tokens=False)]

    def fast():
        return tok.encode_batch(docs)

    def prepare_path(clean):
        def run():
            with Pool(workers) as pool_:
                pieces = (Piece(d, "") for d in docs)
                return [b.ids for b in pool_.map(batches(pieces), clean, path, "<u2")]

        return run

    paths = {
        "tokenizers encode_batch": hf,
        "tiktoken (minigpt BPETokenizer)": fast,
        f"prepare workers ({workers} processes, encode only)": prepare_path(no_clean),
        f"prepare workers ({workers} processes, clean + encode)": prepare_path(CleanConfig()),
    }
    best = {name: float("inf") for name in paths}
    cpu = {name: float("inf") for name in paths}
    results = {}
    for _ in range(args.rounds):
        for name, fn in paths.items():
            results[name], seconds, cpu_s = timed(fn)
            best[name] = min(best[name], seconds)
            cpu[name] = min(cpu[name], cpu_s)
    reference = results["tokenizers encode_batch"]
    identical = results["tiktoken (minigpt BPETokenizer)"] == reference
    flat = np.concatenate([np.asarray(r, dtype=np.uint16) for r in reference])
    encode_only = list(paths)[2]
    identical &= np.array_equal(np.concatenate(results[encode_only]), flat)
    changed = sum(clean_text(d, CleanConfig())[0] != d for d in docs)
    base = mb / best["tokenizers encode_batch"]
    print()
    print(f"Machine: {os.cpu_count()} cores (shared), {workers} workers; corpus: synthetic "
          f"English prose, verse and code (benchmarks/corpus.py)")  # fmt: skip
    print()
    print(
        f"| BPE encoding, vocab {tok.vocab_size}, {mb:.1f} MB | seconds | MB/s | vs tokenizers "
        "| CPU seconds | MB per CPU second | x2 cores |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, seconds in best.items():
        print(
            f"| {name} | {seconds:.2f} | {mb / seconds:.2f} | {mb / seconds / base:.2f}x "
            f"| {cpu[name]:.1f} | {mb / cpu[name]:.2f} | {2 * mb / cpu[name]:.1f} |"
        )
    print()
    print(
        f"ids identical (tokenizers, tiktoken, prepare workers encode only) on all {len(docs)} "
        f"documents ({len(flat):,} tokens): {identical}; cleaning changed {changed} documents"
    )
    print(f"BPE training, vocab {tok.vocab_size}: {train_mb:.1f} MB in {train_s:.1f} s")
    os.remove(path)


if __name__ == "__main__":
    main()
