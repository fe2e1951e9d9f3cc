"""Supervised fine-tuning on CPU: packed vs padded batches, and what tuning does to the demo.

    PYTHONPATH=src python benchmarks/sft.py [--steps 200] [--write]

Packing vs padding: the demo's instruction set (``minigpt demo --chat``'s, from Python's help
topics) as a char chat dataset, block 128, the cpu-demo model shape trained from the same
initial weights with each batching, side by side in alternating rounds of 10 steps (the
machine is shared and noisy). Reported: conversation tokens per second (padding excluded),
reply tokens per second, and the val loss on the replies after the same number of steps and
after the same wall-clock time (the slower side's time).

``--demo`` also runs ``minigpt demo --chat`` and records its val loss on the replies before
and after tuning. ``--write`` updates the issue-15 section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from minigpt.config import ModelConfig
from minigpt.data.chat_dataset import IGNORE, ChatDataset
from minigpt.data.chat_demo import demo_conversations
from minigpt.data.chat_prepare import prepare_chat_dataset
from minigpt.evaluation.chat_eval import evaluate_chat
from minigpt.model import GPT
from record import machine_description, update_section

BATCH, ROUND = 16, 10
BLOCK = 128  # set by --block


class Side:
    """One batching: its model, optimizer, clock and counts."""

    def __init__(self, folder: Path, batching: str, init: dict) -> None:
        self.data = ChatDataset(folder, batching)
        config = ModelConfig(
            n_layer=4, n_head=4, n_embd=128, block_size=BLOCK, vocab_size=self.data.vocab_size
        )
        self.model = GPT(config)
        self.model.load_state_dict(init)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=2e-3, weight_decay=0.1)
        self.seconds, self.tokens, self.replies, self.step = 0.0, 0, 0, 0
        self.step_times: list[float] = []
        self.curve: list[tuple[float, float]] = []  # (seconds, val loss)

    def train(self, steps: int) -> None:
        for _ in range(steps):
            batch = self.data.get_batch(
                "train", BATCH, BLOCK, np.random.default_rng([1, self.step])
            )
            x, y, *seg = batch
            start = time.perf_counter()
            _, loss = self.model(x, y, segments=seg[0] if seg else None)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            took = time.perf_counter() - start
            self.seconds += took
            self.step_times.append(took)
            # packed rows are full (the conversations wrap around); padded ones are not
            self.tokens += x.numel() if seg else _padded_real(x, y)
            self.replies += int((y != IGNORE).sum())
            self.step += 1

    def val_loss(self) -> float:
        return evaluate_chat(self.model, self.data, "val", batch_size=16).loss


def _padded_real(x: torch.Tensor, y: torch.Tensor) -> int:
    """Tokens of a padded batch that belong to a conversation (up to each row's last target)."""
    kept = (y != IGNORE).int()
    last = x.size(1) - torch.argmax(kept.flip(1), dim=1)  # one past each row's last reply token
    return int(last.sum())


def mixed_conversations() -> list[dict]:
    """The demo's exchanges chained 1 to 4 per conversation: lengths from ~60 to ~400 chars,
    as real instruction data varies (the demo set itself is nearly uniform)."""
    singles = [r["messages"] for r in demo_conversations() if len(r["messages"]) == 2]
    return [
        {
            "messages": [
                m for k in range(i % 4 + 1) for m in singles[(i * 5 + k * 11) % len(singles)]
            ]
        }
        for i in range(len(singles))
    ]


def bench_batching(steps: int, mixed: bool) -> dict:
    tmp = Path(tempfile.mkdtemp())
    jsonl = tmp / "demo.jsonl"
    records = mixed_conversations() if mixed else demo_conversations()
    jsonl.write_text("\n".join(json.dumps(r) for r in records), encoding="utf-8")
    folder = prepare_chat_dataset([jsonl], tmp / "ds", block_size=BLOCK, quiet=True)
    torch.manual_seed(0)
    probe = ChatDataset(folder)
    init = GPT(
        ModelConfig(n_layer=4, n_head=4, n_embd=128, block_size=BLOCK, vocab_size=probe.vocab_size)
    ).state_dict()
    sides = {b: Side(folder, b, init) for b in ("pack", "pad")}
    for _ in range(steps // ROUND):
        for side in sides.values():
            side.train(ROUND)
            if side.step % (steps // 4) == 0:
                side.curve.append((side.seconds, side.val_loss()))
    rows = {}
    for name, side in sides.items():
        step_s = statistics.median(side.step_times)
        rows[name] = {
            "tok_s": side.tokens / side.seconds,
            "reply_tok_s": side.replies / side.seconds,
            "ms_per_step": 1000 * step_s,
            "seconds": side.seconds,
            "val_loss": side.curve[-1][1],
            "curve": side.curve,
        }
    return rows


def loss_at(curve: list[tuple[float, float]], seconds: float) -> float:
    """Val loss of the last evaluation at or before ``seconds`` of training."""
    done = [loss for t, loss in curve if t <= seconds + 1e-9]
    return done[-1] if done else float("nan")


def table(rows: dict, steps: int) -> str:
    budget = min(r["seconds"] for r in rows.values())
    lines = [
        f"| batching | tokens/s | reply tokens/s | ms/step | val loss (replies) after {steps} steps "
        f"| val loss after {budget:.0f} s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in rows.items():
        lines.append(
            f"| {name} | {r['tok_s']:,.0f} | {r['reply_tok_s']:,.0f} | {r['ms_per_step']:.0f} "
            f"| {r['val_loss']:.3f} | {loss_at(r['curve'], budget):.3f} |"
        )
    ratio = rows["pack"]["reply_tok_s"] / rows["pad"]["reply_tok_s"]
    lines.append(f"\npacked / padded reply tokens per second: **{ratio:.2f}x**")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--block", type=int, default=128, help="block size (128)")
    parser.add_argument("--mixed", action="store_true", help="conversations of 1 to 4 exchanges")
    parser.add_argument("--demo", action="store_true", help="also run minigpt demo --chat")
    parser.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    args = parser.parse_args()
    global BLOCK
    BLOCK = args.block
    rows = bench_batching(args.steps, args.mixed)
    text = table(rows, args.steps)
    print(text)
    demo_text = ""
    if args.demo:
        from minigpt.demo import run_chat_demo

        out = Path(tempfile.mkdtemp()) / "demo"
        numbers = run_chat_demo(out_dir=out, device="cpu")
        demo_text = (
            "\n\n`minigpt demo --chat` (pretrain on the help topics, then tune on the instruction "
            f"set): val loss on the replies {numbers['val_loss_before']:.3f} before tuning, "
            f"{numbers['val_loss_after']:.3f} after ({numbers['tune_steps']} steps, "
            f"{numbers['tune_seconds']:.0f} s of tuning, {numbers['seconds']:.0f} s in all)."
        )
        print(demo_text)
    if args.write:
        update_section(
            "issue-15:sft",
            "## Supervised fine-tuning (issue 15)\n\n"
            f"`PYTHONPATH=src python benchmarks/sft.py --steps {args.steps}"
            f"{' --demo' if args.demo else ''} --write`; {machine_description()}. "
            "Conversation tokens per second exclude padding; the machine was shared, so the "
            "ratio (same run, alternating rounds) is the number to read.\n\n" + text + demo_text,
        )


if __name__ == "__main__":
    main()
