"""Peak memory and speed of `minigpt prepare` (BPE, vocab 32,000) at two corpus sizes.

    PYTHONPATH=src python benchmarks/bench_prepare_memory.py [--sizes-mb 250,1000]
    PYTHONPATH=src python benchmarks/bench_prepare_memory.py --sizes-mb '' --single-line-mb 1000

For each size it writes a synthetic corpus (benchmarks/corpus.py) of 50 MB text files under
/tmp, runs `minigpt prepare --tokenizer bpe --paragraphs` on it in a child process, samples the
resident memory of that process and its workers ten times a second, and deletes the corpus
and the dataset afterwards. Peak RSS is the largest sum over the process tree (pages shared
by the forked workers count once per process, so this overstates the real footprint).
``--single-line-mb`` also writes one file of that size without a single line break (the same
text, line breaks made spaces) and prepares it with each of ``--tokenizers``: the case of a
huge one-line file, which must stream in pieces like any other.
Prints markdown tables for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil

import corpus

ROOT = Path(__file__).resolve().parents[1]


def tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


def run_prepare(data: Path, out: Path, extra: list[str]) -> tuple[float, int, dict]:
    cmd = [sys.executable, "-m", "minigpt", "prepare", str(data), "--out", str(out),
           "--quiet", "--force", *extra]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    start = time.time()
    child = subprocess.Popen(cmd, env=env)
    proc, peak = psutil.Process(child.pid), 0
    while child.poll() is None:
        peak = max(peak, tree_rss(proc))
        time.sleep(0.1)
    seconds = time.time() - start
    if child.returncode:
        raise SystemExit(f"prepare failed with exit code {child.returncode}")
    meta = json.loads((out / "meta.json").read_text())
    return seconds, peak, meta


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes-mb", default="250,1000")
    p.add_argument("--tmp", default="/tmp/minigpt-bench-prepare")
    p.add_argument("--single-line-mb", type=float, default=0, help="also a one-line file")
    p.add_argument("--tokenizers", default="char,bpe", help="for the one-line file")
    p.add_argument("extra", nargs="*", help="more flags for minigpt prepare (after --)")
    args = p.parse_args()
    rows = []
    for mb in [float(x) for x in args.sizes_mb.split(",") if x]:
        folder, out = Path(args.tmp) / f"corpus-{mb:g}", Path(args.tmp) / f"ds-{mb:g}"
        try:
            size = corpus.write_corpus(folder, int(mb * 1e6))
            flags = ["--tokenizer", "bpe", "--paragraphs", *args.extra]
            seconds, peak, meta = run_prepare(folder, out, flags)
            r = meta["report"]
            tokens = sum(s["tokens"] for s in meta["splits"].values())
            rows.append(
                f"| {size / 1e6:,.0f} MB | {r['documents']['kept']:,} | {tokens:,} | "
                f"{r['bytes_per_token']:.2f} | {r['tokenizer_sample_bytes'] / 1e6:.0f} MB, "
                f"{r['seconds']['tokenizer']:.0f} s | {seconds:.0f} s | "
                f"{size / 1e6 / seconds:.1f} | {peak / 2**30:.2f} GiB |"
            )
            print(rows[-1], flush=True)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
            shutil.rmtree(out, ignore_errors=True)
    if rows:
        print()
        print("| corpus | documents | tokens | bytes/token | tokenizer sample, training | "
              "total time | MB/s | peak RSS (process tree) |")  # fmt: skip
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        print("\n".join(rows))
    if args.single_line_mb:
        single_line(Path(args.tmp), args.single_line_mb, args.tokenizers.split(","), args.extra)


def write_single_line(path: Path, total_bytes: int) -> int:
    """About ``total_bytes`` of corpus text with every line break made a space: one line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pool = [line.replace("\r", " ") for line in corpus.line_pool()]
    size = 0
    with open(path, "w", encoding="utf-8", newline="") as f:
        for doc in corpus.documents(total_bytes, pool=pool):
            text = doc.replace("\n", " ") + " "
            f.write(text)
            size += len(text.encode("utf-8"))
    return size


def single_line(tmp: Path, mb: float, kinds: list[str], extra: list[str]) -> None:
    path, out = tmp / "one-line.txt", tmp / "ds-one-line"
    rows = []
    try:
        size = write_single_line(path, int(mb * 1e6))
        for kind in kinds:
            seconds, peak, meta = run_prepare(path, out, ["--tokenizer", kind, *extra])
            tokens = sum(s["tokens"] for s in meta["splits"].values())
            rows.append(
                f"| {size / 1e6:,.0f} MB, one line | {kind} | {tokens:,} | "
                f"{meta['report']['bytes_per_token']:.2f} | {seconds:.0f} s | "
                f"{size / 1e6 / seconds:.1f} | {peak / 2**30:.2f} GiB |"
            )
            print(rows[-1], flush=True)
            shutil.rmtree(out, ignore_errors=True)
    finally:
        path.unlink(missing_ok=True)
        shutil.rmtree(out, ignore_errors=True)
    print()
    print("| input | tokenizer | tokens | bytes/token | total time | MB/s | "
          "peak RSS (process tree) |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
