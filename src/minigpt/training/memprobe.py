"""Measure the real peak memory of a few training steps, to check the planner against.

``measure_peaks`` runs the real ``Trainer.train_step`` in a fresh Python process (so that the
peak belongs to these runs alone) on a synthetic dataset, and reports:

* on CUDA, ``torch.cuda.max_memory_allocated`` (what the planner's ``peak`` estimates);
* on CPU, the growth of the process's peak resident memory (``VmHWM``, reset before each run)
  over its resident memory just before the model is built. glibc's malloc is told to return every large block
  to the system when it is freed (``MALLOC_MMAP_THRESHOLD_``), so resident memory follows the
  live tensors instead of the allocator's high-water mark.

Used by ``minigpt plan --measure``, the tests and ``benchmarks/bench_planner.py``.
"""

from __future__ import annotations

import gc
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from minigpt.config import RunConfig, config_from_dict
from minigpt.errors import MiniGPTError

MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"}


def measure_peaks(configs: list[RunConfig], steps: int = 2, timeout: float = 600) -> list[int]:
    """Peak bytes of ``steps`` optimizer steps of each config (device, dtype, batch as given).

    All configs run one after the other in one fresh process (one warm-up, one import).
    """
    env = {**os.environ, **MALLOC_ENV}
    src = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    payload = json.dumps({"configs": [c.to_dict() for c in configs], "steps": steps})
    proc = subprocess.run(
        [sys.executable, "-m", "minigpt.training.memprobe"],
        input=payload,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise MiniGPTError(f"memory measurement failed: {last}")
    return [int(p) for p in json.loads(proc.stdout.strip().splitlines()[-1])["peaks"]]


def measure_peak(config: RunConfig, steps: int = 2, timeout: float = 600) -> int:
    return measure_peaks([config], steps, timeout)[0]


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _reset_peak_rss() -> None:
    """Linux: writing 5 to clear_refs resets the peak resident set size (VmHWM)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _peak_rss() -> int:
    with open("/proc/self/status") as f:
        match = re.search(r"VmHWM:\s+(\d+) kB", f.read())
    return int(match.group(1)) * 1024


def _warm_up(config: RunConfig, out_dir: Path) -> None:
    """One step of a tiny model first: lazy imports, kernels and thread pools (about 70 MB on
    CPU, whatever the model) are set up once per process and are not the run's memory."""
    from minigpt.config import load_config
    from minigpt.training.trainer import Trainer

    tiny = dict(n_layer=1, n_head=1, n_embd=8, block_size=8, batch_size=2, vocab_size=0)
    train = {k: getattr(config.train, k) for k in ("data", "device", "dtype")}
    warm = Trainer(load_config(overrides={**tiny, **train, "out_dir": str(out_dir)}))
    warm.train_step()
    del warm


def _measure(config: RunConfig, steps: int, cuda: bool) -> int:
    import torch

    from minigpt.training.trainer import Trainer

    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:
        _reset_peak_rss()
        before = _rss()
    trainer = Trainer(config)
    for _ in range(steps):
        trainer.train_step()
    peak = torch.cuda.max_memory_allocated() if cuda else _peak_rss()
    del trainer
    return peak - before


def _child() -> None:
    from minigpt.data.prepare import prepare_dataset
    from minigpt.runtime import resolve_device

    request = json.loads(sys.stdin.read())
    configs = [config_from_dict(c) for c in request["configs"]]
    if not sys.platform.startswith("linux"):
        raise MiniGPTError("memory is measured on Linux only")
    peaks = []
    with tempfile.TemporaryDirectory() as tmp:
        length = max(20_000, *(4 * c.model.block_size for c in configs))
        text = Path(tmp, "text.txt")
        text.write_text(("abcdefghijklmnopqrstuvwxyz .,\n" * (length // 30 + 1))[:length])
        data = str(prepare_dataset([text], Path(tmp, "ds"), quiet=True))
        for i, config in enumerate(configs):
            config.train.data, config.train.out_dir = data, str(Path(tmp, f"run{i}"))
            if i == 0:
                _warm_up(config, Path(tmp, "warm-up"))
            cuda = resolve_device(config.train.device).type == "cuda"
            peaks.append(_measure(config, request["steps"], cuda))
    print(json.dumps({"peaks": peaks}))


if __name__ == "__main__":
    _child()
