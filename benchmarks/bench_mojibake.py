"""Cleaning speed: what the mojibake repair costs on clean text and on mojibake.

    PYTHONPATH=src python benchmarks/bench_mojibake.py [--mb 4] [--rounds 3]

Runs ``clean_text`` (all steps on, as ``minigpt prepare`` does) over documents of about 1 MB
made from: Tiny Shakespeare (ASCII; ../shared/data), clean Azerbaijani and clean Russian (the
seed texts in ../shared/seeds after repair, repeated), and the same seeds as they arrived
(mojibake). Side by side, the path that main had before the repair module: ftfy behind a
Latin-1/cp1252/MacRoman regex (``ftfy_only`` below). Prints the median MB/s (UTF-8 bytes) of
``--rounds`` rounds and a markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import re
import statistics
import time
from pathlib import Path

import ftfy

from minigpt.data.clean import CleanConfig, clean_text
from minigpt.data.mojibake import FTFY_CONFIG, fix_mojibake

# ../shared next to the repository (or next to the folder of worktrees that holds it).
SHARED = next(
    (p / "shared" for p in Path(__file__).resolve().parents if (p / "shared" / "seeds").is_dir()),
    Path(__file__).resolve().parents[2] / "shared",
)
OLD_SIGNS = re.compile(
    "|".join(
        f"[{re.escape(bytes(range(0xC2, 0xF5)).decode(e, 'ignore'))}]"
        f"[{re.escape(bytes(range(0x80, 0xC0)).decode(e, 'ignore'))}]"
        for e in ("latin-1", "cp1252", "mac_roman")
    )
)
OLD_CONFIG = ftfy.TextFixerConfig(**{**FTFY_CONFIG._asdict(), "explain": False})


def ftfy_only(text: str) -> str:
    """The repair main had before: ftfy on documents where a cheap regex sees a sign."""
    if text.isascii() or not OLD_SIGNS.search(text):
        return text
    return ftfy.fix_text(text, OLD_CONFIG)


def documents(text: str, mb: float) -> list[str]:
    """``text`` repeated to about ``mb`` MB of UTF-8, as documents of about 1 MB."""
    size = len(text.encode("utf-8"))
    per_doc = max(1, (1 << 20) // size)
    doc = text * per_doc
    return [doc] * max(1, round(mb * (1 << 20) / (size * per_doc)))


def rate(fn, docs: list[str], rounds: int) -> float:
    """Median MB/s of ``fn`` over ``docs``."""
    nbytes = sum(len(d.encode("utf-8")) for d in docs)
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for d in docs:
            fn(d)
        times.append(time.perf_counter() - start)
    return nbytes / (1 << 20) / statistics.median(times)


def shown(rate: float) -> str:
    """MB/s; ASCII text costs one ``str.isascii``, which CPython answers without a scan."""
    return f"{rate:.1f}" if rate < 10_000 else "free (isascii)"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mb", type=float, default=4.0)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    seeds = sorted((SHARED / "seeds").glob("course-day*.txt"))
    az_broken = "\n".join(s.read_text(encoding="utf-8") for s in seeds)
    ru_broken = (SHARED / "seeds" / "readme-mini-gpt-ru.txt").read_text(encoding="utf-8")
    corpora = {
        "Tiny Shakespeare (ASCII)": (SHARED / "data" / "tinyshakespeare.txt").read_text(),
        "clean Azerbaijani (4 course days)": fix_mojibake(az_broken)[0],
        "clean Russian (README)": fix_mojibake(ru_broken)[0],
        # ё after a letter is a sign of KOI8-R mojibake: every line gets a closer look.
        "clean Russian, ё in every line (worst case)": "\n".join(
            line + " Она всё ещё её ждёт." for line in fix_mojibake(ru_broken)[0].split("\n")
        ),
        "mojibake Azerbaijani (as they arrived)": az_broken,
        "mojibake Russian (as it arrived)": ru_broken,
    }
    config = CleanConfig()
    rows = []
    for name, text in corpora.items():
        docs = documents(text, args.mb)
        new = rate(lambda d: clean_text(d, config), docs, args.rounds)
        repair = rate(fix_mojibake, docs, args.rounds)
        old = rate(ftfy_only, docs, args.rounds)
        ratio = f"{repair / old:.2f}x" if old < 10_000 else "-"
        rows.append(f"| {name} | {shown(new)} | {shown(repair)} | {shown(old)} | {ratio} |")
        print(rows[-1], flush=True)
    print(
        f"\n| corpus ({args.mb:g} MB, median of {args.rounds}) | clean_text MB/s "
        "| fix_mojibake MB/s | ftfy only (before) MB/s | repair vs before |\n"
        "| --- | --- | --- | --- | --- |\n" + "\n".join(rows)
    )


if __name__ == "__main__":
    main()
