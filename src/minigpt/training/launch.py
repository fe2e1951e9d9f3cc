"""``minigpt train --nproc N``: start N training processes on this machine, through torchrun.

The parent process only launches; each child is a rank that joins the process group as
``distributed.py`` describes. For several machines, call torchrun yourself.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from minigpt.errors import MiniGPTError
from minigpt.training.distributed import launched_by_torchrun


@contextmanager
def _quiet_torchrun_banner(nproc: int) -> Iterator[None]:
    """torchrun sets OMP_NUM_THREADS=1 with a warning banner; share the cores out instead."""
    if "OMP_NUM_THREADS" in os.environ:
        yield
        return
    os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // nproc))
    try:
        yield
    finally:
        os.environ.pop("OMP_NUM_THREADS", None)


def launch(nproc: int, argv: list[str], device: torch.device | None = None) -> int:
    """Run ``python -m minigpt ARGV`` on ``nproc`` processes of this machine, via torchrun.

    The same as ``torchrun --standalone --nproc-per-node NPROC -m minigpt ARGV`` (standalone:
    a local rendezvous on a free port). For several machines, call torchrun yourself.
    """
    if nproc < 1:
        raise MiniGPTError(f"--nproc must be at least 1, got {nproc}")
    if launched_by_torchrun():
        raise MiniGPTError("already running under torchrun; drop --nproc")
    if device is not None and device.type == "cuda" and nproc > torch.cuda.device_count():
        raise MiniGPTError(
            f"--nproc {nproc} needs {nproc} GPUs, this machine has {torch.cuda.device_count()}; "
            f"use --nproc {torch.cuda.device_count()} (or --device cpu)"
        )
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    args = parse_args(["--standalone", f"--nproc-per-node={nproc}", "-m", "minigpt", *argv])
    with _quiet_torchrun_banner(nproc):
        try:
            run(args)
        except SignalException as e:  # torchrun passed it on to the ranks, which saved
            return 128 + int(e.sigval)  # the shell convention: 130 for Ctrl-C, 143 for SIGTERM
        except ChildFailedError as e:
            ranks = sorted(f.local_rank for f in e.failures.values())
            raise MiniGPTError(
                f"rank(s) {', '.join(map(str, ranks))} of {nproc} failed; see their messages above"
            ) from None
    return 0
