"""``minigpt demo``: the whole pipeline in one command, offline, in a few minutes on a CPU.

With no arguments it trains on text that ships with every Python: the standard library's help
topics (``pydoc_data.topics``, about 0.5 MB of English). ``data=FILE`` uses the user's text.
"""

from __future__ import annotations

import time
from pathlib import Path

from minigpt.config import load_config
from minigpt.data.prepare import prepare_dataset
from minigpt.inference.generate import generate_text
from minigpt.interop.loader import load_model
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
