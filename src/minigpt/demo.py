"""``minigpt demo``: the whole pipeline in one command, offline, in a few minutes on a CPU.

With no arguments it trains on text that ships with every Python: the standard library's help
topics (``pydoc_data.topics``, about 0.5 MB of English). ``data=FILE`` uses the user's text.
``run_chat_demo`` (``minigpt demo --chat``) goes on to fine-tuning: it tunes the demo model on
questions about those topics and has two short conversations with it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from minigpt.config import load_config
from minigpt.data.chat_dataset import ChatDataset
from minigpt.data.chat_demo import demo_conversation, demo_conversations
from minigpt.data.chat_prepare import prepare_chat_dataset
from minigpt.data.prepare import prepare_dataset
from minigpt.evaluation.chat_eval import evaluate_chat
from minigpt.inference.chat_completion import chat_completion
from minigpt.inference.generate import generate_text
from minigpt.interop.loader import load_model
from minigpt.model.resize import resize_vocab
from minigpt.training.trainer import train


def builtin_corpus() -> str:
    """The Python help topics, in a stable order."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[name] for name in sorted(topics))


def run_demo(
    data: str | Path | None = None,
    out_dir: str | Path = "runs/demo",
    max_iters: int | None = None,
    samples: int = 2,
    sample_tokens: int = 300,
    device: str = "auto",
) -> dict[str, float]:
    """Prepare, train ``cpu-demo`` with a progress bar, print samples; return the numbers."""
    out = Path(out_dir)
    start = time.time()
    if data is None:
        out.mkdir(parents=True, exist_ok=True)
        data = out / "corpus.txt"
        Path(data).write_text(builtin_corpus(), encoding="utf-8")
        print(f"corpus: Python's built-in help topics ({Path(data).stat().st_size:,} bytes)")
    dataset = prepare_dataset([data], out / "data", force=True)
    overrides = {"data": str(dataset), "out_dir": str(out / "run"), "device": device}
    if max_iters is not None:
        overrides.update(max_iters=max_iters, eval_interval=max(1, max_iters // 4))
    config = load_config(preset="cpu-demo", overrides=overrides)
    result = train(config, force=True, progress=True)
    print(
        f"trained {result.iterations} steps in {result.seconds:.0f} s "
        f"({result.tokens_per_second:,.0f} tok/s): val loss {result.val_loss:.3f}"
    )
    model, tokenizer = load_model(result.run_dir, device=device)
    for i in range(samples):
        print(f"\n--- sample {i + 1} ---")
        generate_text(
            model,
            tokenizer,
            "",
            sample_tokens,
            temperature=0.8,
            seed=i,
            on_text=lambda piece: print(piece, end="", flush=True),
        )
        print()
    total = time.time() - start
    print(f"\ndemo finished in {total:.0f} s; sample more with: minigpt sample {result.run_dir}")
    return {
        "seconds": total,
        "train_seconds": result.seconds,
        "tokens_per_second": result.tokens_per_second,
        "val_loss": result.val_loss,
    }


DEMO_TOPICS = ("for", "lambda")  # the two-question conversations of the set shown at the end
# A tiny model from a short pretraining needs a higher learning rate than the sft preset's (made
# for larger models) to learn 70-odd answers in a few hundred steps.
DEMO_TUNING = dict(lr=3e-3, warmup_iters=20, max_iters=600, eval_interval=150)


def run_chat_demo(
    out_dir: str | Path = "runs/demo-chat",
    pretrain_iters: int = 1000,
    tune_iters: int = DEMO_TUNING["max_iters"],
    device: str = "auto",
) -> dict[str, float]:
    """Pretrain the demo model on the help topics, tune it on questions about them, chat.

    The base model is cpu-demo with a 128-token block (a question and its answer fit); the
    instruction set is ``data/chat_demo.py``'s. Returns the val loss on the replies before
    tuning (the base model, its vocabulary grown for the turn tokens) and after.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    start = time.time()
    corpus = out / "corpus.txt"
    corpus.write_text(builtin_corpus(), encoding="utf-8")
    text = prepare_dataset([corpus], out / "data", force=True, quiet=True)
    overrides = {"data": str(text), "out_dir": str(out / "base"), "device": device}
    overrides.update(
        block_size=128, max_iters=pretrain_iters, eval_interval=max(1, pretrain_iters // 4)
    )
    print(f"1/3 pretraining cpu-demo (block 128) on Python's help topics, {pretrain_iters} steps")
    base = train(load_config(preset="cpu-demo", overrides=overrides), force=True, progress=True)
    questions = out / "instructions.jsonl"
    records = demo_conversations()
    questions.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    chat_data = prepare_chat_dataset(
        [questions], out / "chat-data", tokenizer=text, block_size=128, force=True, quiet=True
    )
    data = ChatDataset(chat_data)
    model, _ = load_model(base.run_dir, device=device)
    before = evaluate_chat(resize_vocab(model, data.vocab_size), data).loss
    print(f"2/3 tuning on {len(records)} conversations about the topics (val loss {before:.3f})")
    overrides = {"data": str(chat_data), "out_dir": str(out / "chat"), "device": device}
    overrides.update(DEMO_TUNING, max_iters=tune_iters, eval_interval=max(1, tune_iters // 4))
    tuned = train(
        load_config(preset="sft", overrides=overrides),
        init_from=base.run_dir,
        force=True,
        progress=True,
    )
    model, tokenizer = load_model(tuned.run_dir, device=device)
    after = evaluate_chat(model, data).loss
    print(f"3/3 val loss on the replies: {before:.3f} before tuning, {after:.3f} after\n")
    for topic in DEMO_TOPICS:
        turns = [m["content"] for m in demo_conversation(records, topic) if m["role"] == "user"]
        messages: list[dict[str, str]] = []
        for question in turns:
            messages.append({"role": "user", "content": question})
            reply = chat_completion(model, tokenizer, messages, temperature=0, max_new_tokens=120)
            messages.append({"role": "assistant", "content": reply.text})
            print(f"user: {question}\nminigpt: {reply.text}")
        print()
    total = time.time() - start
    print(f"demo finished in {total:.0f} s; talk to it with: minigpt chat {tuned.run_dir}")
    return {
        "seconds": total,
        "tune_seconds": tuned.seconds,
        "tune_steps": tuned.iterations,
        "val_loss_before": before,
        "val_loss_after": after,
    }
