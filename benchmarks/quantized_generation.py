"""Int8 generation on CPU: speed against transformers at GPT-2 124M, quality on a trained model.

    PYTHONPATH=src python benchmarks/quantized_generation.py --run RUN --data DATASET

Speed: one GPT-2-124M-shaped model (random weights: speed does not depend on what was learned),
copied into transformers' ``GPT2LMHeadModel`` (the export's weight mapping), is timed five ways
in one process, taking turns for ``--rounds`` rounds: transformers' ``generate`` (greedy, its
KV cache), minigpt fp32, and minigpt with ``--quantize int8``, ``int4`` and ``int8-dynamic``. Greedy, batch 1,
``--tokens`` new tokens after a 16-token prompt; the medians and their ratios are reported.

Quality (``--run``, a model trained here, and ``--data``, its dataset): val perplexity of the
fp32 and the int8 models over the whole val split (``minigpt eval``), and for three prompts how
many greedy tokens the int8 model produces before it first differs from fp32. Why it differs:
both models are also fed fp32's greedy text step by step (the cached loop ``generate`` runs),
which gives at every step fp32's top-2 logit gap and the int8 model's largest logit error; the
table reports, at each first difference, the gap against the error, and over all steps how
often the int8 model's greedy choice is fp32's.

Results go to the ``quantized-generation`` section of BENCHMARKS.md (``--no-record``: print).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch

from minigpt.config import ModelConfig
from minigpt.evaluation.evaluate import evaluate_checkpoint
from minigpt.inference.generate import prompt_ids
from minigpt.interop.hf_import import to_hf_tensors
from minigpt.interop.loader import load_model
from minigpt.model import GPT
from minigpt.model.kv_cache import KVCache
from minigpt.model.quantize import quantize_model
from record import machine_description, update_section

MODES = ("none", "int8", "int4", "int8-dynamic")
PROMPTS = ("ROMEO:\n", "First Citizen:\nWe are", "The king ")


def greedy_tokens_per_second(generate, prompt: torch.Tensor, new: int) -> tuple[float, float]:
    """Tokens per second of wall time and of this thread's CPU time (with one torch thread every
    op runs on it: on a shared machine that counts the work, not the waiting for a core)."""
    start, start_cpu = time.perf_counter(), time.thread_time()
    generate(prompt, new)
    return new / (time.perf_counter() - start), new / (time.thread_time() - start_cpu)


def speed(tokens: int, rounds: int) -> list[tuple[str, float, float]]:
    import transformers

    transformers.logging.set_verbosity_error()
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=50257, block_size=1024, n_layer=12, n_head=12, n_embd=768)
    fp32 = GPT(config).eval()
    int8 = quantize_model(copy.deepcopy(fp32), "int8")
    int8_dynamic = quantize_model(copy.deepcopy(fp32), "int8-dynamic")
    int4 = quantize_model(copy.deepcopy(fp32), "int4")
    hf_config = transformers.GPT2Config(n_embd=768, n_layer=12, n_head=12, n_positions=1024)
    hf = transformers.GPT2LMHeadModel(hf_config).eval()
    hf.load_state_dict(to_hf_tensors(fp32.state_dict(), config), strict=False)

    @torch.no_grad()
    def run_hf(prompt: torch.Tensor, new: int) -> list[int]:
        out = hf.generate(
            prompt, max_new_tokens=new, min_new_tokens=new, do_sample=False,
            pad_token_id=0, attention_mask=torch.ones_like(prompt),
        )  # fmt: skip
        return out[0, prompt.size(1) :].tolist()

    def minigpt(model):
        def run(prompt: torch.Tensor, new: int) -> list[int]:
            return model.generate(prompt, new, temperature=0.0)[0, prompt.size(1) :].tolist()

        return run

    paths = {
        "transformers fp32": run_hf,
        "minigpt fp32": minigpt(fp32),
        "minigpt int8": minigpt(int8),
        "minigpt int4": minigpt(int4),
        "minigpt int8-dynamic": minigpt(int8_dynamic),
    }
    prompt = torch.randint(0, 50257, (1, 16), generator=torch.Generator().manual_seed(0))
    outputs = {name: run(prompt, 8) for name, run in paths.items()}  # warm-up
    if outputs["transformers fp32"] != outputs["minigpt fp32"]:
        raise SystemExit("minigpt and transformers disagree on the same weights")
    speeds: dict[str, list[float]] = {name: [] for name in paths}
    cpu: dict[str, list[float]] = {name: [] for name in paths}
    for r in range(rounds):
        for name, run in paths.items():
            tps, tps_cpu = greedy_tokens_per_second(run, prompt, tokens)
            speeds[name].append(tps)
            cpu[name].append(tps_cpu)
            print(f"round {r + 1}: {name} {tps:.1f} tok/s ({tps_cpu:.1f} of CPU time)", flush=True)
    return [(n, statistics.median(v), statistics.median(cpu[n])) for n, v in speeds.items()]


def agreement(a: list[int], b: list[int]) -> int:
    """Tokens until the first difference."""
    return next(
        (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
    )


@torch.no_grad()
def logits_along(model: GPT, seq: torch.Tensor, start: int) -> torch.Tensor:
    """The logits (steps, vocab) ``generate``'s cached loop computes when it is fed ``seq`` (1, T)
    after its first ``start`` tokens: the same prefill, decode steps and window slides."""
    block = model.config.block_size
    cache, logits = KVCache(block), []
    fresh = seq[:, :start][:, -block:]
    for i in range(start, seq.size(1)):
        if cache.pos + fresh.size(1) > block:  # as generate_tokens: slide the window
            cache.reset()
            fresh = seq[:, :i][:, -block:]
        step, _ = model(fresh, kv_cache=cache, last_only=True)
        logits.append(step[0, -1])
        fresh = seq[:, i : i + 1]
    return torch.stack(logits)


def quality(run: str, data: str, new: int) -> dict:
    """Val loss of fp32 and each int8 mode; per prompt, the greedy tokens each matches fp32, and
    fp32's top-2 gap and the mode's logit error where they first differ; and how many of
    fp32's greedy choices the mode keeps when fed fp32's text."""
    out = {}
    fp32, tokenizer = load_model(run, device="cpu")
    prompts = [torch.tensor([prompt_ids(tokenizer, text)]) for text in PROMPTS]
    texts = [fp32.generate(p, new, temperature=0.0) for p in prompts]
    reference = [logits_along(fp32, t, p.size(1)) for p, t in zip(prompts, texts, strict=True)]
    for mode in MODES[1:]:
        model, _ = load_model(run, device="cpu", quantize=mode)
        matches, at_first, kept = [], [], 0
        for prompt, text, ref in zip(prompts, texts, reference, strict=True):
            tokens = model.generate(prompt, new, temperature=0.0)[0, prompt.size(1) :].tolist()
            n = agreement(text[0, prompt.size(1) :].tolist(), tokens)
            matches.append(n)
            ours = logits_along(model, text, prompt.size(1))
            kept += int((ours.argmax(-1) == ref.argmax(-1)).sum())
            if n < new:
                top2 = ref[n].topk(2).values
                error = (ours[n] - ref[n]).abs().max()
                at_first.append(f"{(top2[0] - top2[1]).item():.4f} / {error.item():.3f}")
        out[mode] = (evaluate_checkpoint(run, data, device="cpu", quantize=mode), matches)
        out[mode] += (at_first, kept / (new * len(prompts)))
    out["none"] = (evaluate_checkpoint(run, data, device="cpu"), [], [], 1.0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="a run trained here, for the quality numbers")
    parser.add_argument("--data", help="its dataset folder (val split)")
    parser.add_argument("--tokens", type=int, default=500, help="new tokens per timed run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--match-tokens", type=int, default=200, help="greedy tokens compared")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's)")
    parser.add_argument("--no-speed", action="store_true", help="the quality part only")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    lines = []
    if args.run and args.data:
        q = quality(args.run, args.data, args.match_tokens)
        base = q["none"][0]
        lines += [
            f"Quality on `{args.run}` (val split of `{args.data}`, {base.tokens:,} tokens); "
            f"greedy continuations of {len(PROMPTS)} prompts ({', '.join(map(repr, PROMPTS))}),"
            f" {args.match_tokens} tokens each, compared with fp32 until the first difference:",
            "",
            "| model | val loss | val perplexity | greedy tokens identical to fp32 "
            "| at the first difference: fp32's top-2 gap / the logit error "
            "| fp32's greedy choices kept, fed fp32's text |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for mode in MODES:
            result, matches, at_first, kept = q[mode]
            change = result.perplexity / base.perplexity - 1
            name = "fp32" if mode == "none" else mode
            same = "-" if mode == "none" else ", ".join(map(str, matches))
            gaps = "-" if mode == "none" else ", ".join(at_first) or "none"
            lines.append(
                f"| {name} | {result.loss:.4f} | {result.perplexity:.4f} ({change:+.2%}) | {same} "
                f"| {gaps} | {kept:.1%} |"
            )
        lines.append("")
        print("\n".join(lines), flush=True)
    rows = [] if args.no_speed else speed(args.tokens, args.rounds)
    base, base_cpu = next(((w, c) for n, w, c in rows if n == "transformers fp32"), (1.0, 1.0))
    table = [
        f"Speed, GPT-2 124M shape, greedy, batch 1, {args.tokens} new tokens, median of "
        f"{args.rounds} alternating rounds (tokens per second of wall time, and of CPU time):",
        "",
        "| path | tokens/s | vs transformers | tokens/s of CPU time | vs transformers (CPU) |",
        "| --- | --- | --- | --- | --- |",
        *[
            f"| {name} | {tps:.1f} | {tps / base:.2f}x | {cpu:.1f} | {cpu / base_cpu:.2f}x |"
            for name, tps, cpu in rows
        ],
    ]
    command = "PYTHONPATH=src python benchmarks/quantized_generation.py" + (
        f" --run RUN --data DATASET --tokens {args.tokens} --rounds {args.rounds}"
    )
    if args.threads:
        command += f" --threads {args.threads}"
    text = "\n".join(
        [
            "## Int8 generation on CPU (issue 17)",
            "",
            f"Machine: {machine_description()}. Command: `{command}`.",
            "",
            *lines,
            *table,
        ]
    )
    print(text)
    if not args.no_record:
        update_section("quantized-generation", text)


if __name__ == "__main__":
    main()
