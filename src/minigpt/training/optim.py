"""Optimizers and learning-rate schedules.

Two optimizers (``TrainConfig.optimizer``):

- ``adamw`` (default): AdamW on everything, weight decay on matrices and embeddings only.
- ``muon``: Muon (Jordan et al. 2024) on the blocks' 2-D weight matrices, AdamW on the rest
  (embeddings, head, norm gains, biases). Muon replaces each matrix's momentum by the nearest
  orthogonal matrix before stepping, so every direction of the update moves at the same rate
  instead of a few dominant ones; at small scale it reaches a given loss in far fewer steps.

Each parameter group carries ``lr_scale``, its learning rate as a multiple of ``lr``: the
trainer sets ``group["lr"] = lr_at(step) * group["lr_scale"]``, so one schedule drives all.

Two schedules (``TrainConfig.schedule``): ``cosine`` (linear warm-up, cosine decay) and
``wsd`` (warm-up, stable, decay: linear warm-up, constant, then a linear cool-down over the
last ``cooldown_frac`` of the steps).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

from minigpt.config import TrainConfig
from minigpt.model import GPT


def lr_at(step: int, cfg: TrainConfig) -> float:
    """The learning rate at ``step``: warm-up, then cosine or WSD to ``lr * min_lr_ratio``."""
    min_lr = cfg.lr * cfg.min_lr_ratio
    decay_iters = cfg.lr_decay_iters or cfg.max_iters
    if step < cfg.warmup_iters:
        return cfg.lr * (step + 1) / (cfg.warmup_iters + 1)
    if step >= decay_iters:
        return min_lr
    if cfg.schedule == "wsd":
        cooldown_start = max(cfg.warmup_iters, decay_iters - round(cfg.cooldown_frac * decay_iters))
        if step < cooldown_start:
            return cfg.lr
        progress = (step - cooldown_start) / max(1, decay_iters - cooldown_start)
        return cfg.lr + progress * (min_lr - cfg.lr)
    progress = (step - cfg.warmup_iters) / max(1, decay_iters - cfg.warmup_iters)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (cfg.lr - min_lr)


def make_optimizer(model: GPT, cfg: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    """The optimizer ``cfg.optimizer`` names, with its parameter groups."""
    if cfg.optimizer == "muon":
        return make_muon(model, cfg)
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    # One fused kernel for all parameters instead of ~10 small ops per parameter tensor: on a
    # CPU at the classic shape that was most of the optimizer's share of the step.
    fused = device.type in ("cuda", "cpu")
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), fused=fused)


def make_muon(model: GPT, cfg: TrainConfig) -> MuonAdamW:
    """Muon for the blocks' weight matrices; AdamW for embeddings, head, gains and biases.

    The embeddings and the head are matrices too, but they are lookups and a classifier rather
    than maps between hidden states, and Muon is known not to suit them.
    """
    hidden, embed, scalars = [], [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.dim() >= 2 and name.startswith("transformer.h."):
            hidden.append(p)
        elif p.dim() >= 2:
            embed.append(p)
        else:
            scalars.append(p)
    embed_lr = cfg.embed_lr or cfg.lr
    adam = dict(use_muon=False, betas=(cfg.beta1, cfg.beta2), eps=1e-8)
    groups = [
        dict(params=hidden, use_muon=True, lr=cfg.muon_lr, lr_scale=cfg.muon_lr / cfg.lr,
             momentum=cfg.muon_momentum, weight_decay=cfg.muon_weight_decay),
        dict(params=embed, lr=embed_lr, lr_scale=embed_lr / cfg.lr,
             weight_decay=cfg.weight_decay, **adam),
        dict(params=scalars, lr=cfg.lr, lr_scale=1.0, weight_decay=0.0, **adam),
    ]  # fmt: skip
    return MuonAdamW([g for g in groups if g["params"]])


def newton_schulz(g: torch.Tensor, steps: int = 5, eps: float = 1e-7) -> torch.Tensor:
    """Approximately ``U V^T`` for ``g = U S V^T``: ``g`` with all singular values set to 1.

    A quintic Newton-Schulz iteration with coefficients tuned (by Keller Jordan) to push the
    singular values near 1 in five steps: they land in roughly [0.7, 1.2], which is as good as
    exact for optimisation and only needs matmuls (bfloat16 on GPUs).
    """
    a, b, c = 3.4445, -4.7750, 2.0315
    x = g.bfloat16() if g.is_cuda else g.float()
    transposed = x.size(-2) > x.size(-1)
    if transposed:  # iterate on the smaller Gram matrix
        x = x.mT
    x = x / (x.norm(dim=(-2, -1), keepdim=True) + eps)  # singular values now <= 1
    for _ in range(steps):
        A = x @ x.mT
        x = a * x + (b * A + c * A @ A) @ x
    if transposed:
        x = x.mT
    return x.to(g.dtype)


class MuonAdamW(torch.optim.Optimizer):
    """Muon on groups with ``use_muon=True``, AdamW on the others, in one optimizer.

    One optimizer (rather than two) keeps the trainer, the gradient scaler and the checkpoint
    code unchanged: its ``state_dict`` holds Muon's momentum buffers next to Adam's moments.
    """

    def __init__(self, groups: Iterable[dict[str, Any]]) -> None:
        defaults = dict(
            lr=0.02, weight_decay=0.0, momentum=0.95, nesterov=True, ns_steps=5,
            betas=(0.9, 0.95), eps=1e-8, use_muon=False,
        )  # fmt: skip
        super().__init__(list(groups), defaults)
        for group in self.param_groups:
            if group["use_muon"] and any(p.dim() != 2 for p in group["params"]):
                raise ValueError("Muon works on 2-D matrices only; give the rest to AdamW")

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if group["use_muon"]:
                    self._muon_update(p, group)
                else:
                    self._adamw_update(p, group)
        return loss

    def _muon_update(self, p: torch.Tensor, group: dict[str, Any]) -> None:
        state = self.state[p]
        if "momentum_buffer" not in state:
            state["momentum_buffer"] = torch.zeros_like(p)
        buf = state["momentum_buffer"]
        buf.lerp_(p.grad, 1 - group["momentum"])
        g = p.grad.lerp(buf, group["momentum"]) if group["nesterov"] else buf
        update = newton_schulz(g, group["ns_steps"])
        # A tall matrix's orthogonal update has smaller entries; scale it up to match.
        scale = max(1.0, p.size(0) / p.size(1)) ** 0.5
        p.mul_(1 - group["lr"] * group["weight_decay"])
        p.add_(update, alpha=-group["lr"] * scale)

    def _adamw_update(self, p: torch.Tensor, group: dict[str, Any]) -> None:
        """The same arithmetic as ``torch.optim.AdamW``."""
        state = self.state[p]
        if "exp_avg" not in state:
            state["step"] = 0
            state["exp_avg"] = torch.zeros_like(p)
            state["exp_avg_sq"] = torch.zeros_like(p)
        beta1, beta2 = group["betas"]
        state["step"] += 1
        step = state["step"]
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg.lerp_(p.grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
        p.mul_(1 - group["lr"] * group["weight_decay"])
        denom = (exp_avg_sq.sqrt() / math.sqrt(1 - beta2**step)).add_(group["eps"])
        p.addcdiv_(exp_avg, denom, value=-group["lr"] / (1 - beta1**step))
