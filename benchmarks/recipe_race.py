"""Classic recipe against ``cpu-fast`` on Tiny Shakespeare, side by side in one process.

    python benchmarks/recipe_race.py --data DATASET          # the race (about 8 min on 2 idle cores)
    python benchmarks/recipe_race.py --data DATASET --ablation   # cpu-fast minus one option each

DATASET is Tiny Shakespeare prepared with ``minigpt prepare`` (char level; the last 10% of the
characters are the validation split). All contestants train in the same process, taking turns
of ``--slice`` seconds, so that whatever else loads the machine slows them all alike; the
clocks count training steps only (evaluations are paused out). Val loss is measured on the
whole validation split in non-overlapping windows of each model's block size.

The race: ``classic`` (4 layers, 4 heads, 128 wide, block 64, batch 12, AdamW at 1e-3 with
cosine decay over 2000 steps, dropout 0, GPT-2 architecture), ``cpu-fast`` (the preset), and
``cpu-fast-long`` (the preset's recipe with its schedule stretched to the classic run's
measured duration, for the equal-time comparison). Reported: wall time and tokens to reach
val 1.89 (linear interpolation between evaluations), val loss at equal time, ms per step.

``--standard --seeds 2``: cpu-fast against its standard-class variants (``STANDARD``: the
options that make it exactly Qwen3, so it exports without remote code and to GGUF), each with
two seeds, all in one race; reported: the mean final val loss, the time to val 1.89, and the
time per step against cpu-fast's.

The ablation runs the preset and, for each modern option, the preset with that one option set
back to the classic choice, all for the preset's number of steps; it reports the final val
loss and the time per step of each, so each option's contribution to quality and to speed.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from minigpt.config import PRESETS, load_config
from minigpt.data.dataset import Dataset
from minigpt.training.trainer import Trainer

TARGET = 1.89
VAL_STRIDE = 1
CLASSIC = dict(
    n_layer=4,
    n_head=4,
    n_embd=128,
    block_size=64,
    batch_size=12,
    dropout=0.0,
    lr=1e-3,
    max_iters=2000,
    lr_decay_iters=2000,
    warmup_iters=100,
    min_lr_ratio=0.1,
    beta2=0.99,
    weight_decay=0.1,
)
# The options of cpu-fast, each set back to the classic choice, for the ablation.
ABLATIONS = {
    "learned positions (no rope)": dict(pos="learned"),
    "layernorm (no rmsnorm)": dict(norm="layernorm", bias=True),
    "no qk_norm": dict(qk_norm=False),
    "gelu MLP (no relu2)": dict(mlp="gelu"),
    "tied embeddings": dict(tie_embeddings=True),
    "no logit soft-cap": dict(logit_softcap=0.0),
    "normal init (no zero_init_proj)": dict(zero_init_proj=False),
    "adamw (no muon)": dict(optimizer="adamw", lr=2e-3),
    "cosine schedule (no wsd)": dict(schedule="cosine"),
}
# cpu-fast with the options that make it a standard transformers / llama.cpp class (issue 16):
# SwiGLU instead of ReLU² and no soft-cap is exactly Qwen3 (rope, RMSNorm, QK-norm, no biases).
STANDARD = {
    "qwen3 class (swiglu, no soft-cap)": dict(mlp="swiglu", logit_softcap=0.0),
    "qwen3 class, tied head": dict(mlp="swiglu", logit_softcap=0.0, tie_embeddings=True),
}


@dataclass
class Contestant:
    """One training run, advanced a slice at a time, with its own training-only clock."""

    name: str
    trainer: Trainer
    eval_every: int
    clock: float = 0.0
    curve: list[tuple[int, float, int, float]] = field(default_factory=list)  # step, s, tok, val

    @property
    def done(self) -> bool:
        return self.trainer.step >= self.trainer.cfg.max_iters

    @property
    def tokens_per_step(self) -> int:
        cfg = self.trainer.cfg
        return cfg.batch_size * cfg.grad_accum * self.trainer.config.model.block_size

    def advance(self, seconds: float) -> None:
        start = self.clock
        while not self.done and self.clock - start < seconds:
            t0 = time.perf_counter()
            self.trainer.train_step()
            self.clock += time.perf_counter() - t0
            step = self.trainer.step
            # Evaluate on a regular grid, and twice as often close to the target, to time it well.
            near = self.curve and self.curve[-1][3] < TARGET + 0.12
            every = max(1, self.eval_every // 2) if near else self.eval_every
            if step % every == 0 or self.done:
                self.record()

    def record(self) -> None:
        step = self.trainer.step
        val = full_val_loss(self.trainer)
        self.curve.append((step, self.clock, step * self.tokens_per_step, val))
        print(f"  {self.name:>34} step {step:5d} | {self.clock:6.1f} s | val {val:.4f}", flush=True)

    def reach(self, target: float) -> tuple[float, int] | None:
        """(seconds, tokens) when val first reaches ``target``, interpolated; None if never."""
        prev = None
        for _, s, tok, val in self.curve:
            if val <= target:
                if prev is None:
                    return s, tok
                ps, ptok, pval = prev
                f = (pval - target) / (pval - val)
                return ps + f * (s - ps), round(ptok + f * (tok - ptok))
            prev = (s, tok, val)
        return None

    def val_at(self, seconds: float, axis: int = 1) -> float | None:
        """Val loss at ``seconds`` of training (or at that step, ``axis=0``), interpolated
        between evaluations; None if the run did not get that far."""
        prev = None
        for point in self.curve:
            x, val = point[axis], point[3]
            if x >= seconds:
                if prev is None:
                    return val
                px, pval = prev
                return pval + (seconds - px) / (x - px) * (val - pval)
            prev = (x, val)
        return None

    def val_by(self, seconds: float) -> float | None:
        """The val loss this run had reached by ``seconds``: a finished run keeps its last."""
        if self.done and self.clock <= seconds:
            return self.curve[-1][3]
        return self.val_at(seconds)

    @property
    def ms_per_step(self) -> float:
        return 1000 * self.clock / max(1, self.trainer.step)


@torch.no_grad()
def full_val_loss(trainer: Trainer, batch: int = 128) -> float:
    """Mean loss over the val split, cut into non-overlapping windows of block_size.

    Every window by default; every ``VAL_STRIDE``-th one with ``--val-stride`` (cheaper).
    """
    model, block = trainer.model, trainer.config.model.block_size
    ids = np.concatenate([np.asarray(s, dtype=np.int64) for s in trainer.data.splits["val"].shards])
    n = (len(ids) - 1) // block
    x = torch.from_numpy(ids[: n * block]).view(n, block)[::VAL_STRIDE]
    y = torch.from_numpy(ids[1 : n * block + 1]).view(n, block)[::VAL_STRIDE]
    n = len(x)
    model.eval()
    total = 0.0
    for i in range(0, n, batch):
        _, loss = model(x[i : i + batch].to(trainer.device), y[i : i + batch].to(trainer.device))
        total += loss.item() * len(x[i : i + batch])
    model.train()
    return total / n


def contestant(name: str, data: str, root: Path, overrides: dict, evals: int = 12) -> Contestant:
    preset = overrides.pop("preset", None)
    values = dict(overrides, data=data, out_dir=str(root / name.replace(" ", "_")), device="cpu")
    values.update(log_interval=10**9, eval_interval=10**9, checkpoint_interval=10**9)
    trainer = Trainer(load_config(preset=preset, overrides=values), force=True)
    every = max(1, trainer.cfg.max_iters // evals)
    return Contestant(name, trainer, every)


def race(contestants: list[Contestant], slice_s: float, max_minutes: float = 1e9) -> None:
    """Round-robin until all are done: each takes ``slice_s`` seconds of training per turn."""
    for c in contestants:
        c.record()  # step 0
    start = time.time()
    while not all(c.done for c in contestants):
        if time.time() - start > max_minutes * 60:
            print(f"stopped after {max_minutes} minutes of wall time (--max-minutes)")
            for c in contestants:
                if c.curve[-1][0] != c.trainer.step:
                    c.record()  # where each one got to
            return
        for c in contestants:
            c.advance(slice_s)


def calibrate(a: dict, b: dict, data: str, root: Path, steps: int = 30) -> float:
    """Seconds per step of recipe b over recipe a, measured alternately."""
    ca, cb = contestant("calib-a", data, root, dict(a)), contestant("calib-b", data, root, dict(b))
    for c in (ca, cb):  # warm up allocators and kernels
        c.trainer.train_step()
    ta = tb = 0.0
    for _ in range(steps):
        for c in (ca, cb):
            t0 = time.perf_counter()
            c.trainer.train_step()
            dt = time.perf_counter() - t0
            if c is ca:
                ta += dt
            else:
                tb += dt
    return tb / ta


def fmt(x: float | None, spec: str) -> str:
    return "never" if x is None else format(x, spec)


def run_race(data: str, root: Path, args: argparse.Namespace) -> dict:
    fast = dict(PRESETS["cpu-fast"])
    cs = [
        contestant("classic", data, root, dict(CLASSIC), evals=10),
        contestant("cpu-fast", data, root, dict(fast, preset="cpu-fast"), evals=10),
    ]
    if args.long:
        ratio = calibrate(CLASSIC, fast, data, root)
        long_iters = round(CLASSIC["max_iters"] / ratio)
        print(f"cpu-fast step / classic step = {ratio:.2f}: cpu-fast-long gets {long_iters} steps")
        cs.append(contestant("cpu-fast-long", data, root, dict(fast, max_iters=long_iters)))
    race(cs, args.slice, args.max_minutes)
    classic = cs[0]
    # The classic run reaches ~1.89 only at the end of its 2000 steps; if it was stopped early
    # (--max-minutes), its full duration is projected from its measured time per step.
    classic_time = classic.ms_per_step * CLASSIC["max_iters"] / 1000
    rows = []
    print(
        f"\n| recipe | steps | ms/step | s to {TARGET} | tokens to {TARGET} | final val |"
        f" val at {args.budget:.0f} s | val at classic's end ({classic_time:.0f} s) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for c in cs:
        hit = c.reach(TARGET)
        row = dict(
            name=c.name,
            steps=c.trainer.step,
            ms_per_step=c.ms_per_step,
            seconds=c.clock,
            seconds_to_target=hit[0] if hit else None,
            tokens_to_target=hit[1] if hit else None,
            final_val=c.curve[-1][3],
            val_at_budget=c.val_by(args.budget),
            val_at_classic_end=c.val_by(classic_time),
            curve=c.curve,
        )
        rows.append(row)
        print(
            f"| {c.name} | {c.trainer.step} | {c.ms_per_step:.1f} | "
            f"{fmt(row['seconds_to_target'], '.1f')} | {fmt(row['tokens_to_target'], ',')} | "
            f"{row['final_val']:.4f} | {fmt(row['val_at_budget'], '.4f')} | "
            f"{fmt(row['val_at_classic_end'], '.4f')} |"
        )
    fast_row = rows[1]
    classic_s = rows[0]["seconds_to_target"] or classic_time
    if fast_row["seconds_to_target"]:
        print(
            f"\ncpu-fast reaches {TARGET} in {fast_row['seconds_to_target']:.1f} s, "
            f"{fast_row['seconds_to_target'] / classic_s:.2f}x the classic's "
            f"{'measured' if rows[0]['seconds_to_target'] else 'projected 2000-step'} time "
            f"({classic_s:.1f} s); cpu-fast step / classic step = "
            f"{fast_row['ms_per_step'] / rows[0]['ms_per_step']:.2f}"
        )
    return dict(classic_seconds=classic_s, rows=rows)


def run_ablation(
    data: str,
    root: Path,
    slice_s: float,
    max_minutes: float,
    steps: int | None,
    changes: dict[str, dict] | None = None,
    seeds: int = 1,
) -> dict:
    """cpu-fast against cpu-fast with each of ``changes`` (ABLATIONS by default), each with
    ``seeds`` seeds, all taking turns in one race."""
    fast = dict(PRESETS["cpu-fast"])
    if steps:  # a shorter run of the same recipe (the schedule follows max_iters)
        fast["max_iters"] = steps
    variants = {"cpu-fast": {}, **(ABLATIONS if changes is None else changes)}
    cs = []
    for seed in range(seeds):
        for name, change in variants.items():
            label = name if seeds == 1 else f"{name} #{seed}"
            values = dict(fast, preset="cpu-fast", seed=1337 + seed, **change)
            cs.append(contestant(label, data, root, values, evals=5 if seeds == 1 else 8))
    race(cs, slice_s, max_minutes)
    if seeds > 1:
        return seed_table(cs, list(variants), seeds)
    # Compared at the same number of steps (the end, if every run finished) and at the same
    # training time (the shortest clock among them), so both quality and speed count.
    steps = min(c.trainer.step for c in cs)
    seconds = min(c.clock for c in cs)
    rows = []
    for c in cs:
        at_steps = c.val_at(steps, axis=0)
        rows.append(
            dict(
                name=c.name,
                val_at_steps=at_steps,
                val_at_time=c.val_at(seconds),
                ms_per_step=c.ms_per_step,
                curve=c.curve,
            )
        )
    base = rows[0]
    print(
        f"\n| cpu-fast with | val at step {steps} | change | val at {seconds:.0f} s | change |"
        " time per step vs cpu-fast |"
    )
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['name']} | {r['val_at_steps']:.4f} | "
            f"{r['val_at_steps'] - base['val_at_steps']:+.4f} | {r['val_at_time']:.4f} | "
            f"{r['val_at_time'] - base['val_at_time']:+.4f} | "
            f"{r['ms_per_step'] / base['ms_per_step']:.2f}x |"
        )
    return dict(steps=steps, seconds=seconds, rows=rows)


def seed_table(cs: list[Contestant], names: list[str], seeds: int) -> dict:
    """Per variant: the mean over seeds (and the spread) of the final val loss, the time to
    the race's target and the time per step, against cpu-fast's."""
    rows = []
    for i, name in enumerate(names):
        runs = cs[i :: len(names)]
        finals = [c.curve[-1][3] for c in runs]
        hits = [c.reach(TARGET) for c in runs]
        times = [h[0] for h in hits if h]
        rows.append(
            dict(
                name=name,
                finals=finals,
                final=float(np.mean(finals)),
                to_target=float(np.mean(times)) if len(times) == len(runs) else None,
                ms_per_step=float(np.mean([c.ms_per_step for c in runs])),
                curves=[c.curve for c in runs],
            )
        )
    base = rows[0]
    print(
        f"\n| variant ({seeds} seeds) | final val (mean) | per seed | change | s to {TARGET} "
        "| vs cpu-fast | time per step |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        ratio = (
            f"{r['to_target'] / base['to_target']:.2f}x"
            if r["to_target"] and base["to_target"]
            else "n/a"
        )
        print(
            f"| {r['name']} | {r['final']:.4f} | {', '.join(f'{v:.4f}' for v in r['finals'])} | "
            f"{r['final'] - base['final']:+.4f} | {fmt(r['to_target'], '.1f')} | {ratio} | "
            f"{r['ms_per_step'] / base['ms_per_step']:.2f}x |"
        )
    return dict(seeds=seeds, rows=rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="Tiny Shakespeare, prepared (char level)")
    parser.add_argument("--ablation", action="store_true", help="run the ablation instead")
    parser.add_argument("--ablation-steps", type=int, help="steps per ablation run (preset's)")
    parser.add_argument(
        "--standard",
        action="store_true",
        help="ablation of the standard-class variants of cpu-fast (Qwen3: swiglu, no soft-cap)",
    )
    parser.add_argument("--seeds", type=int, default=1, help="seeds per ablation variant (1)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (2)")
    parser.add_argument("--slice", type=float, default=2.0, help="seconds per turn (2)")
    parser.add_argument("--budget", type=float, default=180.0, help="equal-time point, s (180)")
    parser.add_argument(
        "--long", action="store_true", help="add cpu-fast stretched to classic's time"
    )
    parser.add_argument("--max-minutes", type=float, default=1e9, help="stop the race after this")
    parser.add_argument("--val-stride", type=int, default=1, help="evaluate every Nth val window")
    parser.add_argument("--json", help="also write the results (with curves) to this file")
    args = parser.parse_args()
    global VAL_STRIDE
    VAL_STRIDE = args.val_stride
    torch.set_num_threads(args.threads)
    Dataset(args.data)  # fail early on a bad folder
    with tempfile.TemporaryDirectory() as tmp:
        if args.ablation or args.standard:
            result = run_ablation(
                args.data,
                Path(tmp),
                args.slice,
                args.max_minutes,
                args.ablation_steps,
                STANDARD if args.standard else None,
                args.seeds,
            )
        else:
            result = run_race(args.data, Path(tmp), args)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
