"""``prepare --tokenizer auto`` on issue 19's kind of corpus, and the numbers behind the advice.

1. Builds the ~1 MB Azerbaijani corpus of ``az_corpus.py`` (templated stories, then a tail
   of fluent text) and runs ``prepare_auto`` with the default probe: its table, its choice,
   its wall time.
2. ``--map``: the probe's tiny model over a range of BPE sizes on that corpus and on Tiny
   Shakespeare, next to prepare's vocabulary numbers for each (tokens per entry, learned
   entries seen <= 3 times): where the advice's thresholds come from.

Writes the section ``issue-19:tokenizer-auto`` of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from az_corpus import SEEDS, build  # noqa: E402
from minigpt.data.vocab_check import MAX_RARE_SHARE, MIN_TOKENS_PER_ENTRY  # noqa: E402
from minigpt.sweep.tokenizer_probe import (  # noqa: E402
    Candidate,
    ProbeConfig,
    ProbeReport,
    format_probe,
    prepare_auto,
    probe_tokenizers,
)
from record import machine_description, update_section  # noqa: E402

MAP_SIZES = {
    "Azerbaijani-like": (320, 512, 1024, 1500, 2048),
    "Tiny Shakespeare": (320, 512, 1024, 2048, 4096, 8192),
}
SHAKESPEARE = SEEDS.parent / "data" / "tinyshakespeare.txt"


def table(report: ProbeReport) -> str:
    rows = [
        "| candidate | held-out bits/byte | bytes/token | tokens per entry | rare entries "
        "(<= 3) / learned | train loss | seconds |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for s in report.scores:
        v = s.vocabulary
        name = s.candidate.name + (" (chosen)" if s.candidate == report.chosen else "")
        if v:
            share = v["rare_entries"] / max(1, v["learned_entries"])
            vocab = (
                f"{v['tokens_per_entry']:,.0f} | {v['rare_entries']} / {v['learned_entries']} "
                f"({share:.0%})"
            )
        else:
            vocab = "- | -"
        rows.append(
            f"| {name} | {s.bits_per_byte:.3f} | {s.bytes_per_token:.2f} | {vocab} | "
            f"{s.train_loss:.3f} | {s.seconds:.1f} |"
        )
    return "\n".join(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--steps", type=int, default=ProbeConfig().steps)
    p.add_argument("--map", action="store_true", help="also map BPE sizes (slow)")
    p.add_argument("--only-map", action="store_true", help="skip the auto run")
    p.add_argument("--shakespeare", action="store_true", help="map Tiny Shakespeare too")
    p.add_argument("--no-record", action="store_true", help="print, leave BENCHMARKS.md alone")
    args = p.parse_args()
    torch.set_num_threads(1)
    out = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        corpus = tmp / "az.txt"
        stories, tail = build(corpus)
        start = time.time()
        cpu = time.process_time()
        if not args.only_map:
            prepare_auto([corpus], tmp / "ds", probe=ProbeConfig(steps=args.steps), split="tail")
            wall, cpu = time.time() - start, time.process_time() - cpu
            meta = json.loads((tmp / "ds" / "meta.json").read_text(encoding="utf-8"))
            chosen = meta["extra"]["tokenizer_probe"]["chosen"]
            out.append(
                f"**Azerbaijani-like corpus** ({stories:,} bytes of templated stories + {tail:,} "
                f"bytes of fluent tail; `--split tail`, val = the last 10%): `--tokenizer auto` "
                f"chose **{chosen}** in {wall:.0f} s wall, {cpu:.0f} s CPU of this process "
                f"(the whole prepare: probe of {args.steps} steps per candidate, then the dataset)."
            )
        if args.map or args.only_map:
            corpora = [("Azerbaijani-like", corpus)]
            if args.shakespeare:
                corpora.append(("Tiny Shakespeare", SHAKESPEARE))
            for name, path in corpora:
                tried = [Candidate("char"), *(Candidate("bpe", v) for v in MAP_SIZES[name])]
                try:
                    report = probe_tokenizers(
                        [path], probe=ProbeConfig(steps=args.steps), split="tail", tried=tried
                    )
                except Exception as e:  # e.g. a size more than the text can teach
                    out.append(f"{name}: {e}")
                    continue
                print(format_probe(report))
                out.append(f"\n{name}, {report.train_bytes:,} probe bytes:\n\n{table(report)}")
    text = "\n\n".join(out)
    print(text)
    if args.no_record:
        return
    flags = [f for f in ("map", "only_map", "shakespeare") if getattr(args, f)]
    command = "PYTHONPATH=src python benchmarks/tokenizer_auto.py" + "".join(
        " --" + f.replace("_", "-") for f in flags
    )
    update_section(
        "issue-19:tokenizer-auto",
        f"## Tokenizer advice and `--tokenizer auto` (issue 19)\n\n`{command}` "
        f"({machine_description()}). Advice thresholds: fewer than {MIN_TOKENS_PER_ENTRY} "
        f"training tokens per entry, or more than {MAX_RARE_SHARE:.0%} of the learned entries "
        f"seen <= 3 times.\n\n{text}",
    )


if __name__ == "__main__":
    main()
