"""Peak memory and speed of `minigpt prepare` (BPE, vocab 32,000) at two corpus sizes.

    PYTHONPATH=src python benchmarks/bench_prepare_memory.py [--sizes-mb 250,1000]

For each size it writes a synthetic corpus (benchmarks/corpus.py) of 50 MB text files under
/tmp, runs `minigpt prepare --tokenizer bpe --paragraphs` on it in a child process, samples the
resident memory of that process and its workers ten times a second, and deletes the corpus
and the dataset afterwards. Peak RSS is the largest sum over the process tree (pages shared
by the forked workers count once per process, so this overstates the real footprint).
Prints a markdown table for BENCHMARKS.md.
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
           "--tokenizer", "bpe", "--paragraphs", "--quiet", "--force", *extra]  # fmt: skip
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
    p.add_argument("extra", nargs="*", help="more flags for minigpt prepare (after --)")
    args = p.parse_args()
    rows = []
    for mb in map(float, args.sizes_mb.split(",")):
        folder, out = Path(args.tmp) / f"corpus-{mb:g}", Path(args.tmp) / f"ds-{mb:g}"
        try:
            size = corpus.write_corpus(folder, int(mb * 1e6))
            seconds, peak, meta = run_prepare(folder, out, args.extra)
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
    print()
    print("| corpus | documents | tokens | bytes/token | tokenizer sample, training | "
          "total time | MB/s | peak RSS (process tree) |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
