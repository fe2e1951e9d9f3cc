"""Training on several processes: DistributedDataParallel, or FSDP for models too big for one GPU.

``torchrun --nproc_per_node=N -m minigpt train ...`` (or ``minigpt train --nproc N``, which
calls torchrun for you: ``launch.py``) starts N copies of the trainer. Each is one *rank*: it joins the
process group torchrun describes in its environment (NCCL on CUDA, one GPU per rank; gloo on
CPU), reads its own share of every batch, and the gradients are averaged across ranks before
each optimizer step, so N ranks with ``grad_accum`` A train exactly like one process with
``grad_accum`` N x A:

    tokens per step = batch_size x grad_accum x ranks x block_size

Which data a rank reads: micro-step ``m`` of rank ``r`` reads the global micro-batch
``r * grad_accum + m`` of the step (see ``micro_index``), so the set of batches of a step does
not depend on how it is split over ranks. A plain run is rank 0 of 1 and reads what it always
did; a run resumed on another number of ranks reads what the original would have.

With ``fsdp`` each block (and the rest of the model) is sharded by PyTorch's ``fully_shard``:
parameters, gradients and AdamW's moments live 1/N on each rank, gathered layer by layer for
the forward and backward passes. Checkpoints are still written by rank 0 in the single-device
format (gathered full tensors), so every other command reads them, and they resume sharded or
not, on any number of ranks.

``Distributed`` is what the trainer talks to. In a plain run all its methods do nothing, so
the trainer has a single code path.
"""

from __future__ import annotations

import math
import os
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from minigpt.checkpoint import load_model_state
from minigpt.errors import MiniGPTError
from minigpt.model import GPT


def launched_by_torchrun() -> bool:
    """torchrun (and every launcher compatible with it) sets these for each process it starts."""
    return all(name in os.environ for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))


def is_main_process() -> bool:
    """Rank 0, or a plain single-process run: the one that prints and writes files."""
    return int(os.environ.get("RANK", "0")) == 0


@dataclass
class Distributed:
    """This process's place among the ranks, and the collective operations the trainer needs."""

    device: torch.device
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    fsdp: bool = False
    owns_group: bool = False  # we started the process group, so we end it
    ddp: nn.Module | None = field(default=None, repr=False)

    # -- who am I ---------------------------------------------------------------------------

    @property
    def active(self) -> bool:
        """More than one rank: collectives are needed."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def sharded(self) -> bool:
        """FSDP over several ranks: no rank holds the whole model or optimizer state."""
        return self.fsdp and dist.is_initialized()

    def describe(self) -> str:
        if not dist.is_initialized():
            return "1 process"
        mode = "FSDP" if self.fsdp else "DDP" if self.active else "no data parallelism"
        return f"{self.world_size} ranks ({mode}, {dist.get_backend()})"

    # -- data -------------------------------------------------------------------------------

    def micro_index(self, micro: int, grad_accum: int) -> int:
        """The global micro-batch index that this rank's micro-step ``micro`` reads.

        Rank r owns micro-batches ``r*A .. r*A + A-1`` of each step (A = grad_accum), so 2
        ranks with A=1 read what 1 rank with A=2 reads, and rank 0 of 1 reads micro-batch m.
        """
        return self.rank * grad_accum + micro

    def eval_indices(self, n: int) -> range:
        """This rank's share of ``n`` evaluation batches: every world_size-th one.

        Padded so that every rank runs the same number of forward passes (FSDP's collectives
        need that); indices ``>= n`` are extra work whose losses are dropped.
        """
        padded = math.ceil(n / self.world_size) * self.world_size
        return range(self.rank, padded, self.world_size)

    def share_batch(self, micro: int, grad_accum: int) -> tuple[int, int]:
        """``--batch-size auto`` on several ranks: the (micro-batch, grad_accum) per rank that
        keeps the planned sequences per step over all ranks together.

        ``micro`` x ``grad_accum`` is what one device would run; every rank gets the smallest
        micro-batch any rank fits, and the accumulation is divided among the ranks.
        """
        if not self.active:
            return micro, grad_accum
        from minigpt.training.planner import split_batch

        smallest = -self.max(-micro)
        return split_batch(math.ceil(micro * grad_accum / self.world_size), smallest)

    def seed_step(self, seed: int, step: int) -> None:
        """Give ranks > 0 their own dropout randomness, a pure function of (seed, rank, step).

        Rank 0 keeps the run's generator (saved in checkpoints), so a plain run is untouched;
        the others are re-seeded every step, so a resumed run draws what the original did.
        """
        if self.rank > 0:
            torch.manual_seed(
                int(np.random.SeedSequence([seed, self.rank, step]).generate_state(1)[0])
            )

    # -- the model ---------------------------------------------------------------------------

    def shard(self, model: GPT) -> GPT:
        """With ``fsdp``, shard the model in place (before the optimizer sees its parameters)."""
        if not self.sharded:
            return model
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        mesh = init_device_mesh(self.device.type, (self.world_size,))
        # One unit per block: its parameters are gathered just for its own forward/backward.
        for block in model.transformer.h:
            fully_shard(block, mesh=mesh)
        fully_shard(model, mesh=mesh)  # the rest: embeddings (tied to the head), final norm
        return model

    def wrap(self, model: nn.Module) -> nn.Module:
        """The module to call for training: DDP over ``model`` when there are several ranks."""
        if not self.active or self.fsdp:
            return model
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [self.device.index] if self.device.type == "cuda" else None
        # GPT's only buffers are RoPE's cos/sin tables, the same on every rank: no need to
        # broadcast them at every forward pass (one collective less per micro-step).
        self.ddp = DistributedDataParallel(model, device_ids=device_ids, forward_sync_buffers=False)
        return self.ddp

    def sync_gradients(self, sync: bool) -> Any:
        """Context for one micro-step: DDP all-reduces gradients only when ``sync`` (the last).

        FSDP reduce-scatters after every micro-step instead: skipping it would keep a full,
        unsharded gradient on every rank, the memory FSDP is there to save.
        """
        if sync or self.ddp is None:
            return nullcontext()
        return self.ddp.no_sync()

    def grad_scaler(self, device_type: str, enabled: bool) -> torch.amp.GradScaler:
        """The fp16 loss scaler. With FSDP each rank sees only its shard of the gradients, so
        the overflow check must be agreed on by all (or one rank would skip a step the others
        take); PyTorch's ShardedGradScaler all-reduces it."""
        if self.sharded:
            from torch.distributed.fsdp.sharded_grad_scaler import ShardedGradScaler

            return ShardedGradScaler(device_type, enabled=enabled)
        return torch.amp.GradScaler(device_type, enabled=enabled)

    # -- collectives ---------------------------------------------------------------------------

    def _reduce(self, tensor: torch.Tensor, op: Any = None) -> torch.Tensor:
        """All-reduce a CPU tensor (NCCL needs it on the GPU for the trip)."""
        on_device = tensor.to(self.device)
        dist.all_reduce(on_device, op=op or dist.ReduceOp.SUM)
        return on_device.cpu()

    def mean(self, value: float) -> float:
        """The mean of ``value`` over ranks (e.g. the training loss of a step)."""
        if not self.active:
            return value
        return self._reduce(torch.tensor([value], dtype=torch.float64)).item() / self.world_size

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """The element-wise sum of ``tensor`` over ranks."""
        return self._reduce(tensor) if self.active else tensor

    def max(self, value: int) -> int:
        """The largest ``value`` of any rank."""
        if not self.active:
            return value
        return int(self._reduce(torch.tensor([value]), dist.ReduceOp.MAX).item())

    def any(self, flag: bool) -> bool:
        """True on every rank when true on any: decisions that change the control flow (stop
        now?) must be the same on all ranks, or their collectives stop matching."""
        return bool(self.max(int(flag)))

    def check_same(self, value: int, what: str, hint: str) -> None:
        """Fail on every rank unless all ranks hold the same ``value``."""
        if not self.active:
            return
        low = self._reduce(torch.tensor([value]), dist.ReduceOp.MIN).item()
        high = self._reduce(torch.tensor([value]), dist.ReduceOp.MAX).item()
        if low != high:
            raise MiniGPTError(f"ranks disagree on the {what} ({low} vs {high}); {hint}")

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def close(self) -> None:
        """Wait for every rank, then leave the process group if we joined it."""
        if self.owns_group and dist.is_initialized():
            self.barrier()
            dist.destroy_process_group()
            self.owns_group = False

    # -- checkpoints ---------------------------------------------------------------------------

    def full_state(
        self, model: GPT, optimizer: torch.optim.Optimizer
    ) -> tuple[GPT | None, torch.optim.Optimizer | None]:
        """Model and optimizer as single-device objects for writing a checkpoint.

        Without FSDP every rank already holds them whole. With FSDP every rank takes part in
        gathering each sharded tensor, and rank 0 gets CPU copies: a plain GPT and an optimizer
        of the same kind over it, which the checkpoint writer saves like any other. Other
        ranks get ``(None, None)``.
        """
        if not self.sharded:
            return (model, optimizer) if self.is_main else (None, None)
        gathered: dict[int, torch.Tensor | None] = {}  # tied weights appear twice: gather them once

        def full(value: Any) -> Any:
            if not _is_dtensor(value):
                return value.detach().cpu() if torch.is_tensor(value) else value
            if id(value) not in gathered:
                whole = value.full_tensor()
                gathered[id(value)] = whole.cpu() if self.is_main else None
            return gathered[id(value)]

        weights = {name: full(v) for name, v in model.state_dict().items()}
        opt_sd = optimizer.state_dict()
        opt_sd["state"] = {
            i: {k: full(v) for k, v in s.items()} for i, s in sorted(opt_sd["state"].items())
        }
        if not self.is_main:
            return None, None
        with torch.device("meta"):
            copy = GPT(model.config)
        copy.load_state_dict(weights, assign=True)
        copy_params = dict(copy.named_parameters())
        name_of = {id(p): name for name, p in model.named_parameters()}
        groups = [
            {
                **{k: v for k, v in g.items() if k not in ("params", "fused", "foreach")},
                "params": [copy_params[name_of[id(p)]] for p in g["params"]],
            }
            for g in optimizer.param_groups
        ]
        opt_copy = type(optimizer)(groups)
        opt_copy.load_state_dict(opt_sd)
        return copy, opt_copy

    def load_model_state(self, model: GPT, tensors: dict[str, torch.Tensor]) -> None:
        """Load single-device weights; with FSDP each rank keeps its own shard of each."""
        if self.sharded:
            current = model.state_dict()
            tensors = {
                k: _shard_like(v, current[k]) if k in current else v for k, v in tensors.items()
            }
        load_model_state(model, tensors)

    def load_optimizer_state(self, optimizer: torch.optim.Optimizer, state: dict) -> None:
        """Load a single-device optimizer state; with FSDP each rank keeps its shards."""
        if self.sharded:
            params = [p for g in optimizer.param_groups for p in g["params"]]
            state = {
                **state,
                "state": {
                    i: {
                        k: _shard_like(v, params[i])
                        if torch.is_tensor(v) and v.shape == params[i].shape
                        else v
                        for k, v in s.items()
                    }
                    for i, s in state["state"].items()
                },
            }
        optimizer.load_state_dict(state)

    def resume_grad_accum(self, ckpt_state: dict[str, Any], grad_accum: int) -> tuple[int, str]:
        """``grad_accum`` for resuming on this many ranks, and a note when it changed.

        A run keeps its global batch (grad_accum x ranks micro-batches per step) when resumed
        on another number of ranks, as long as that number divides it. A ``grad_accum`` other
        than the checkpoint's is taken as a deliberate change of the batch and kept.
        """
        saved_world = int(ckpt_state.get("world_size", 1))
        saved_accum = int(ckpt_state.get("config", {}).get("train", {}).get("grad_accum", 0))
        total = saved_world * saved_accum
        if not saved_accum or grad_accum * self.world_size == total:
            return grad_accum, ""
        if grad_accum != saved_accum:
            return grad_accum, (
                f"note: the batch changes from {total} to {grad_accum * self.world_size} "
                "micro-batches per step (grad_accum x ranks)"
            )
        if total % self.world_size:
            divisors = [n for n in range(1, total + 1) if total % n == 0]
            raise MiniGPTError(
                f"this run takes {total} micro-batches per step ({saved_world} ranks x "
                f"grad_accum {saved_accum}), which {self.world_size} ranks cannot share evenly; "
                f"resume on {', '.join(map(str, divisors))} ranks, or pass --grad-accum to "
                "change the batch"
            )
        new = total // self.world_size
        return new, (
            f"grad_accum {saved_accum} -> {new}: {self.world_size} ranks keep the run's "
            f"{total} micro-batches per step"
        )


def _is_dtensor(value: Any) -> bool:
    from torch.distributed.tensor import DTensor

    return isinstance(value, DTensor)


def _shard_like(tensor: torch.Tensor, like: Any) -> Any:
    """``tensor`` (whole, on every rank) as a DTensor sharded like ``like``; no communication."""
    if not _is_dtensor(like):
        return tensor
    from torch.distributed.tensor import distribute_tensor

    return distribute_tensor(
        tensor.to(like.device), like.device_mesh, like.placements, src_data_rank=None
    )


def init(device: torch.device, fsdp: bool = False) -> Distributed:
    """Join the process group torchrun set up for this process; else a plain rank 0 of 1.

    CUDA ranks use NCCL and GPU ``LOCAL_RANK`` of their node; CPU ranks use gloo.
    """
    if not launched_by_torchrun():
        if fsdp:
            print("note: fsdp has no effect in a single process; use --nproc N or torchrun")
        return Distributed(device=device, fsdp=False)
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ["LOCAL_RANK"])
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise MiniGPTError(
                f"this node runs {int(os.environ.get('LOCAL_WORLD_SIZE', local_rank + 1))} "
                f"ranks but has {torch.cuda.device_count()} GPU(s); start at most one rank "
                "per GPU (--nproc-per-node)"
            )
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    elif device.type != "cpu":
        raise MiniGPTError(
            f"distributed training runs on CUDA GPUs (NCCL) or CPUs (gloo), not {device.type}; "
            "pass --device cuda or --device cpu"
        )
    owns = not dist.is_initialized()
    if owns:
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, device_id=device if device.type == "cuda" else None)
    return Distributed(
        device=device,
        rank=rank,
        world_size=world,
        local_rank=local_rank,
        fsdp=fsdp,
        owns_group=owns,
    )
