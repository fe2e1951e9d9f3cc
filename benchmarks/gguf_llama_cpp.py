"""A trained run as GGUF, read by transformers and run by llama.cpp, against minigpt itself.

    python benchmarks/gguf_llama_cpp.py --run RUN [--tokens 50] [--threads 2] [--repeats 5]

For each of ``--quant f32 f16 q8_0`` the run's checkpoint is exported to GGUF, and:

- **transformers' GGUF reader** (``from_pretrained(DIR, gguf_file=...)``): the largest logit
  difference from minigpt's on random tokens (exact-ish for f32, the cost of f16/q8_0);
- **llama.cpp** (``llama-cpp-python``; skipped with a notice where it is not installed, as it
  compiles llama.cpp): greedy continuation of the prompt for ``--tokens`` tokens, compared
  token by token with ``minigpt sample --temperature 0`` (the model's own ``generate`` with
  its KV cache), and the generation speed of both in tokens/s, median of ``--repeats``,
  with the same number of threads, measured alternately so that load falls on both alike.

The run must have an architecture llama.cpp has (gpt2, llama or qwen3).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from minigpt.interop.gguf import QUANTS, export_gguf
from minigpt.interop.gguf_check import (
    gguf_logit_diff,
    gguf_reader_available,
    llama_cpp_greedy,
    open_llama_cpp,
)
from minigpt.interop.loader import load_model


def minigpt_greedy(model: torch.nn.Module, prompt: list[int], n: int) -> tuple[list[int], float]:
    """Greedy tokens and the seconds they took (KV cache, as minigpt sample uses it)."""
    ids = torch.tensor([prompt])
    t0 = time.perf_counter()
    out = model.generate(ids, n, temperature=0.0)
    return out[0, len(prompt) :].tolist(), time.perf_counter() - t0


def llama_greedy(llm: object, prompt: list[int], n: int) -> tuple[list[int], float]:
    t0 = time.perf_counter()
    tokens = llama_cpp_greedy(llm, prompt, n)
    return tokens, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="run or checkpoint folder")
    parser.add_argument("--prompt", default="ROMEO:\n", help="text to continue")
    parser.add_argument("--tokens", type=int, default=50, help="tokens to generate (50)")
    parser.add_argument("--threads", type=int, default=2, help="threads for both (2)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats (5)")
    parser.add_argument("--quant", nargs="+", default=list(QUANTS), choices=QUANTS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, tokenizer = load_model(args.run, device="cpu")
    prompt = tokenizer.encode(args.prompt)
    n = min(args.tokens, model.config.block_size - len(prompt))
    mine, _ = minigpt_greedy(model, prompt, n)
    try:
        import llama_cpp  # noqa: F401

        have_llama = True
    except ImportError:
        have_llama = False
        print("llama.cpp: not installed (pip install llama-cpp-python); only the reader is run")
    reader = gguf_reader_available()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for quant in args.quant:
            result = export_gguf(args.run, Path(tmp) / f"model-{quant}.gguf", quant=quant)
            row = {"quant": quant, "MB": result.size / 1e6}
            if reader:
                row["logit_diff"] = gguf_logit_diff(result.path, model)
            if have_llama:
                llm = open_llama_cpp(result.path, model.config.block_size, args.threads)
                theirs, _ = llama_greedy(llm, prompt, n)  # warm-up, and the tokens
                same = next(
                    (i for i, (a, b) in enumerate(zip(mine, theirs, strict=False)) if a != b), n
                )
                ours_s, theirs_s = [], []
                for _ in range(args.repeats):  # alternately, so that load falls on both
                    ours_s.append(minigpt_greedy(model, prompt, n)[1])
                    theirs_s.append(llama_greedy(llm, prompt, n)[1])
                row.update(
                    equal=theirs == mine,
                    first_diff=same,
                    minigpt_tps=n / statistics.median(ours_s),
                    llama_tps=n / statistics.median(theirs_s),
                )
                del llm
            rows.append(row)
            print(row, flush=True)
    print(
        f"\n| GGUF | size MB | max logit diff (transformers' reader) | llama.cpp greedy {n} "
        f"tokens = minigpt's | llama.cpp tokens/s | minigpt tokens/s | ratio |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        diff = f"{r['logit_diff']:.1e}" if "logit_diff" in r else "n/a"
        if "equal" in r:
            same = "yes" if r["equal"] else f"no (from token {r['first_diff']})"
            speed = (
                f"{r['llama_tps']:.0f} | {r['minigpt_tps']:.0f} | "
                f"{r['llama_tps'] / r['minigpt_tps']:.1f}x"
            )
        else:
            same, speed = "n/a", "n/a | n/a | n/a"
        print(f"| {r['quant']} | {r['MB']:.2f} | {diff} | {same} | {speed} |")


if __name__ == "__main__":
    main()
