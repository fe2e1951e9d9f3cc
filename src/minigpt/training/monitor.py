"""Watching a run: ``metrics.jsonl``, a loss-curve PNG, TensorBoard, samples, MFU and memory.

Each watcher is a training callback (see ``callbacks.py``), called as ``callback(run, record)``
after every evaluation, and some define ``on_log`` and ``close`` too. ``default_callbacks`` is
what ``minigpt train`` attaches; everything lands in the run folder:

- ``metrics.jsonl``: one JSON object per log line (``"kind": "train"``) and per evaluation
  (``"kind": "eval"``), appended as the run goes (a resumed run drops the lines past its
  checkpoint first, so the file always describes one consistent run);
- ``loss.png``: train and val loss against tokens seen, redrawn at every evaluation (when
  matplotlib is installed; without it the plot is skipped, with one notice);
- ``samples.txt``: a sample from a fixed prompt and seed at every evaluation, to watch the
  text improve;
- ``tensorboard/``: the same scalars for TensorBoard, when it is installed.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import torch

from minigpt.errors import format_bytes  # noqa: F401 (re-exported for report.py)
from minigpt.extras import available, missing
from minigpt.gpus import peak_tflops
from minigpt.training.callbacks import Callback, RunView

METRICS_FILE = "metrics.jsonl"
PLOT_FILE = "loss.png"
SAMPLES_FILE = "samples.txt"
TENSORBOARD_DIR = "tensorboard"


def gpu_peak_flops(device: torch.device, dtype: torch.dtype) -> float | None:
    """The GPU's peak FLOP/s for ``dtype``, or None off CUDA or for an unknown GPU."""
    if device.type != "cuda" or not torch.cuda.is_available():
        return None
    mixed, fp32 = peak_tflops(torch.cuda.get_device_name(device))
    peak = fp32 if dtype == torch.float32 else mixed
    return peak * 1e12 if peak else None


def mfu(flops_per_token: float, tokens_per_second: float, peak_flops: float | None) -> float | None:
    """Model FLOPs utilisation: achieved training FLOP/s over the hardware's peak."""
    if not peak_flops:
        return None
    return flops_per_token * tokens_per_second / peak_flops


def peak_memory(device: torch.device) -> int:
    """Peak bytes: CUDA memory allocated by tensors, else the process's peak resident set."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    try:
        import resource
    except ImportError:  # Windows
        return 0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if sys.platform == "darwin" else rss * 1024)


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    if h:
        return f"{h}h{m:02d}m"
    return f"{m}m{s:02d}s" if m else f"{s}s"


class MetricsLog:
    """Appends every log and eval record to ``RUN/metrics.jsonl``."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / METRICS_FILE

    def truncate_after(self, step: int) -> None:
        """Drop records past ``step`` (left by a run that died after its last checkpoint)."""
        if not self.path.is_file():
            return
        kept = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                if json.loads(line).get("iter", 0) <= step:
                    kept.append(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a crash
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text("".join(k + "\n" for k in kept), encoding="utf-8")
        os.replace(tmp, self.path)

    def write(self, record: dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    def on_log(self, run: RunView, record: dict[str, Any]) -> None:
        self.write({"kind": "train", **record})

    def __call__(self, run: RunView, record: dict[str, Any]) -> None:
        self.write({"kind": "eval", **record})


class LossCurve:
    """Redraws ``RUN/loss.png`` (train and val loss against tokens seen) at each evaluation."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / PLOT_FILE

    def __call__(self, run: RunView, record: dict[str, Any]) -> None:
        # the object API: no pyplot, no global backend switch, thread-safe
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        history = [r for r in run.history if "tokens" in r]
        fig = Figure(figsize=(7, 4.2), dpi=100)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        tokens = [r["tokens"] for r in history]
        ax.plot(tokens, [r["train"] for r in history], marker=".", label="train")
        ax.plot(tokens, [r["val"] for r in history], marker=".", label="val")
        ax.set_xlabel("tokens seen")
        ax.set_ylabel("loss (nats per token)")
        ax.set_title(f"{run.run_dir.name}: best val {run.best_val_loss:.4f}")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        tmp = self.path.with_name(f".{self.path.name}.tmp.png")
        fig.savefig(tmp)
        os.replace(tmp, self.path)


class SampleWriter:
    """Appends a sample from a fixed prompt and seed to ``RUN/samples.txt`` at each eval.

    It draws from its own generator, never the global one, so it does not change the run.
    """

    def __init__(self, run_dir: Path, prompt: str, tokens: int, seed: int = 1337) -> None:
        self.path = Path(run_dir) / SAMPLES_FILE
        self.prompt, self.tokens, self.seed = prompt, tokens, seed

    def __call__(self, run: RunView, record: dict[str, Any]) -> None:
        from minigpt.inference.generate import generate_text

        model = run.model
        was_training = model.training
        model.eval()
        try:
            text = generate_text(
                model, run.tokenizer, self.prompt, self.tokens, 0.8, 200, self.seed
            )
        finally:
            model.train(was_training)
        header = f"=== iter {record['iter']} | val {record['val']:.4f} ==="
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(f"{header}\n{text}\n\n")


class TensorBoardLog:
    """The log and eval scalars as TensorBoard events in ``RUN/tensorboard``."""

    def __init__(self, run_dir: Path) -> None:
        from torch.utils.tensorboard import SummaryWriter  # ImportError: not installed

        self.writer = SummaryWriter(str(Path(run_dir) / TENSORBOARD_DIR))

    def on_log(self, run: RunView, record: dict[str, Any]) -> None:
        for key in ("loss", "lr", "tokens_per_second", "mfu"):
            if record.get(key) is not None:
                self.writer.add_scalar(f"train/{key}", record[key], record["iter"])

    def __call__(self, run: RunView, record: dict[str, Any]) -> None:
        for key in ("train", "val", "val_ppl", "val_bpb"):
            if record.get(key) is not None:
                self.writer.add_scalar(f"eval/{key}", record[key], record["iter"])
        self.writer.flush()

    def close(self, run: RunView) -> None:
        self.writer.close()


def default_callbacks(run: RunView, *, samples: bool = True) -> list[Callback]:
    """The watchers ``minigpt train`` attaches: metrics, plot, sample, TensorBoard.

    ``samples=False`` leaves out the sample writer (under FSDP, where generating text needs
    every rank's shards of the model while only rank 0 watches).
    """
    cfg = run.cfg
    callbacks: list[Callback] = [MetricsLog(run.run_dir)]
    if available("matplotlib"):
        callbacks.append(LossCurve(run.run_dir))
    else:
        run.log(f"note: {missing('matplotlib', f'the loss plot ({PLOT_FILE})')}")
    if samples and cfg.sample_tokens > 0:
        callbacks.append(SampleWriter(run.run_dir, cfg.sample_prompt, cfg.sample_tokens))
    if cfg.tensorboard and available("tensorboard"):
        callbacks.append(TensorBoardLog(run.run_dir))
    return callbacks
