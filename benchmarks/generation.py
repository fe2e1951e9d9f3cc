"""Generation speed on CPU: KV cache vs recomputing the context, for two model shapes.

    PYTHONPATH=src python benchmarks/generation.py            # prints, updates BENCHMARKS.md
    PYTHONPATH=src python benchmarks/generation.py --quick    # the small shape only

Random weights (speed does not depend on what the model learned). For each shape it reports
tokens/s for 500 and 2000 new tokens with and without the cache, their ratio, and the time to
the first token. Both paths are measured in the same run, side by side.

Running 2000 uncached tokens of a 124M model takes hours on a laptop CPU, so totals come from
measured step costs: a step's cost depends only on what it runs (a forward over T tokens, or
one cached token attending to L past positions), so the script times those at a few sizes,
interpolates, and adds them up over the exact schedule ``generate_tokens`` follows (prefill,
single steps, window slides past block_size). For the small shape it also runs the real loops
for 500 tokens end to end, which checks the model against the clock.
"""

from __future__ import annotations

import argparse
import platform
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from minigpt.config import ModelConfig
from minigpt.model import GPT, KVCache
from minigpt.model.sampling import sample_next

SHAPES = {
    # The shakespeare-char preset's model (vocabulary of Tiny Shakespeare's 65 characters).
    "shakespeare-char": ModelConfig(
        vocab_size=65, block_size=128, n_layer=6, n_head=8, n_embd=256, dropout=0.0
    ),
    "gpt2-124m": ModelConfig(
        vocab_size=50257, block_size=1024, n_layer=12, n_head=12, n_embd=768, dropout=0.0
    ),
}
PROMPT = 32  # prompt tokens
NEW_TOKENS = (500, 2000)
ROOT = Path(__file__).resolve().parents[1]


def best_time(fn: Callable[[], object], repeats: int) -> float:
    """The fastest of ``repeats`` runs: the least disturbed by other jobs on a shared CPU."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


class StepCosts:
    """Measured seconds of the two kinds of step, interpolated between measured sizes."""

    def __init__(self, model: GPT, repeats: int, points: int) -> None:
        self.model = model
        block, vocab = model.config.block_size, model.config.vocab_size
        logits = torch.randn(1, vocab)
        history = torch.randint(0, vocab, (1, PROMPT))
        self.sample = best_time(lambda: sample_next(logits, 0.8, 200, history=history), 5)
        self.full_sizes = sorted({1, PROMPT, *np.linspace(1, block, points).astype(int).tolist()})
        self.full_times = [
            best_time(lambda t=t: self._forward(t), repeats) for t in self.full_sizes
        ]
        self.past_sizes = sorted({PROMPT, block // 2, block - 1})
        self.step_times = [self._decode(past, repeats) for past in self.past_sizes]

    @torch.no_grad()
    def _forward(self, tokens: int) -> None:
        idx = torch.randint(0, self.model.config.vocab_size, (1, tokens))
        self.model(idx, last_only=True)

    @torch.no_grad()
    def _decode(self, past: int, repeats: int) -> float:
        """One cached token after ``past`` cached positions (median of several steps)."""
        cache = KVCache(self.model.config.block_size)
        vocab = self.model.config.vocab_size
        self.model(torch.randint(0, vocab, (1, past)), kv_cache=cache)
        times = []
        for _ in range(max(3, repeats)):
            cache.pos = past
            idx = torch.randint(0, vocab, (1, 1))
            times.append(best_time(lambda idx=idx: self.model(idx, kv_cache=cache), 1))
        return statistics.median(times)

    def full(self, tokens: int) -> float:
        return float(np.interp(tokens, self.full_sizes, self.full_times)) + self.sample

    def decode(self, past: int) -> float:
        return float(np.interp(past, self.past_sizes, self.step_times)) + self.sample


def schedule_seconds(
    costs: StepCosts, block: int, new: int, cached: bool, context_shift: int = 1
) -> float:
    """Seconds for ``new`` tokens after a PROMPT-token prompt, step by step as generate_tokens."""
    total, pos = 0.0, 0
    for step in range(new):
        if not cached:
            total += costs.full(min(PROMPT + step, block))
        elif step == 0:
            pos = min(PROMPT, block)
            total += costs.full(pos)
        elif pos + 1 > block:  # the window slides: re-prefill
            pos = block - context_shift + 1
            total += costs.full(pos)
        else:
            total += costs.decode(pos)
            pos += 1
    return total


@torch.no_grad()
def end_to_end(model: GPT, new: int, cached: bool) -> tuple[float, float]:
    """(seconds for the first token, seconds for all) of a real generate_tokens loop."""
    idx = torch.randint(0, model.config.vocab_size, (1, PROMPT))
    gen = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    first = None
    for _ in model.generate_tokens(idx, new, 0.8, 200, gen, use_cache=cached):
        first = first if first is not None else time.perf_counter() - start
    return first, time.perf_counter() - start


def bench_shape(name: str, config: ModelConfig, real_loops: bool) -> list[dict]:
    torch.manual_seed(0)
    model = GPT(config).eval()
    big = config.n_embd >= 768
    costs = StepCosts(model, repeats=2 if big else 5, points=5 if big else 9)
    ttft = costs.full(PROMPT)
    rows = []
    for new in NEW_TOKENS:
        row = {"shape": name, "params": model.num_params(), "new": new, "ttft": ttft}
        row["cached"] = new / schedule_seconds(costs, config.block_size, new, True)
        row["uncached"] = new / schedule_seconds(costs, config.block_size, new, False)
        shift = config.block_size // 4
        row["shifted"] = new / schedule_seconds(costs, config.block_size, new, True, shift)
        row["shift"] = shift
        if real_loops and new == NEW_TOKENS[0]:
            first_c, all_c = end_to_end(model, new, True)
            _, all_u = end_to_end(model, new, False)
            row["real_cached"], row["real_uncached"] = new / all_c, new / all_u
            row["real_ttft"] = first_c
        rows.append(row)
        print(format_row(row), flush=True)
    return rows


def format_row(r: dict) -> str:
    line = (
        f"| {r['shape']} ({r['params'] / 1e6:.1f}M) | {r['new']} | {r['cached']:,.1f} | "
        f"{r['uncached']:,.2f} | **{r['cached'] / r['uncached']:.1f}x** | "
        f"{r['shifted']:,.1f} | {r['ttft'] * 1000:,.0f} ms |"
    )
    if "real_cached" in r:
        line += (
            f" {r['real_cached']:,.1f} / {r['real_uncached']:,.2f} "
            f"({r['real_cached'] / r['real_uncached']:.1f}x), "
            f"first token {r['real_ttft'] * 1000:,.0f} ms |"
        )
    else:
        line += " (not run: modelled only) |"
    return line


HEADER = """\
| shape | new tokens | cached tok/s | uncached tok/s | speed-up | cached, context_shift=block/4 | first token | end-to-end check: cached / uncached tok/s |
| --- | --- | --- | --- | --- | --- | --- | --- |"""


def update_benchmarks_md(rows: list[dict], command: str, threads: int) -> None:
    path = ROOT / "BENCHMARKS.md"
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    body = "\n".join(format_row(r) for r in rows)
    section = f"""## Generation: KV cache vs recompute (issue 4)

`{command}` on {platform.processor() or platform.machine()}, torch {torch.__version__},
{threads} thread(s), batch 1, a {PROMPT}-token prompt, random weights, sampling with
temperature 0.8 and top-k 200. Measured {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
on a CPU shared with other jobs, so absolute numbers are noisy; the ratios, measured in the
same run, are the stable part. Totals add up measured step costs over the exact schedule of
`generate_tokens` (see the script's docstring); the last column runs the real loops where
they are affordable, as a check. "context_shift=block/4" re-prefills a 3/4 window every
block/4 tokens once past block_size (default 1 re-prefills the whole block every step, exactly
as without a cache, so past block_size it is no faster). First token = prefill of the prompt
plus one sample (the same for both paths).

{HEADER}
{body}
"""
    pattern = re.compile(r"## Generation: KV cache vs recompute \(issue 4\)\n.*?(?=\n## |\Z)", re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: section.rstrip("\n") + "\n", text)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text, encoding="utf-8")
    print(f"updated {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="only the shakespeare-char shape")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1)")
    parser.add_argument("--no-write", action="store_true", help="do not update BENCHMARKS.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(HEADER)
    rows = bench_shape("shakespeare-char", SHAPES["shakespeare-char"], real_loops=True)
    if not args.quick:
        rows += bench_shape("gpt2-124m", SHAPES["gpt2-124m"], real_loops=False)
    if not args.no_write:
        command = "python benchmarks/generation.py" + (" --quick" if args.quick else "")
        if args.threads != 1:
            command += f" --threads {args.threads}"
        update_benchmarks_md(rows, command, args.threads)


if __name__ == "__main__":
    main()
