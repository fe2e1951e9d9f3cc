"""Choosing the next token from the model's logits.

Each control is a small function on last-position logits (B, vocab) that returns new logits,
with the tokens it rules out set to -inf, so the controls compose and can be checked on
hand-made numbers. ``sample_next`` applies them in the usual order (as Hugging Face and
llama.cpp do): repetition penalty on the raw logits, temperature, then the truncations
top-k, top-p and min-p, then one draw from the softmax.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

# Below this temperature logits / temperature can overflow (logits of 1e18 and more above it);
# the usual path above it keeps one temporary per row, as memory estimates assume.
TINY_TEMPERATURE = 1e-20


def apply_repetition_penalty(
    logits: torch.Tensor, history: torch.Tensor, penalty: float
) -> torch.Tensor:
    """Make every token that occurs in ``history`` (B, T) less likely (CTRL, Keskar et al.).

    A positive logit is divided by ``penalty`` and a negative one multiplied by it, so for
    ``penalty > 1`` a seen token always moves down, however often it was seen.
    """
    if penalty == 1.0 or history.size(1) == 0:
        return logits
    seen = logits.gather(1, history)
    # A penalty near 0 (or huge) overflows to +-inf, and an inf logit makes softmax nan. The
    # bound leaves room for any temperature sampling_probs divides by without shifting.
    big = torch.finfo(logits.dtype).max * TINY_TEMPERATURE / 2
    penalised = torch.where(seen > 0, seen / penalty, seen * penalty).clamp(-big, big)
    return logits.scatter(1, history, penalised)


def top_k_filter(logits: torch.Tensor, k: int | None) -> torch.Tensor:
    """Keep the ``k`` highest logits of each row (ties with the k-th are kept too)."""
    if k is None or k >= logits.size(-1):
        return logits
    kth = torch.topk(logits, k).values[:, [-1]]
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Nucleus sampling: keep the fewest likeliest tokens whose probabilities sum to ``p``."""
    if p >= 1.0:
        return logits
    sorted_logits, order = logits.sort(dim=-1, descending=True)
    probs = F.softmax(sorted_logits, dim=-1)
    # A token goes when the likelier ones before it already reach p; the likeliest stays.
    drop = probs.cumsum(dim=-1) - probs >= p
    drop[:, 0] = False
    return logits.masked_fill(drop.scatter(1, order, drop), float("-inf"))


def min_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Keep tokens at least ``p`` times as likely as the likeliest one (min-p sampling).

    Unlike a fixed top-k or top-p, the cut adapts to the model's confidence: a sharp
    distribution keeps few tokens, a flat one keeps many.
    """
    if p <= 0.0:
        return logits
    probs = F.softmax(logits, dim=-1)
    return logits.masked_fill(probs < p * probs.max(dim=-1, keepdim=True).values, float("-inf"))


def sample_next(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
    *,
    top_p: float = 1.0,
    min_p: float = 0.0,
    repetition_penalty: float = 1.0,
    history: torch.Tensor | None = None,
) -> torch.Tensor:
    """One token id per row (B, 1) from last-position logits (B, vocab).

    ``temperature`` 0 picks the likeliest token (greedy; the truncations then change
    nothing). ``history`` (B, T), the ids so far, is what the repetition penalty looks at.
    """
    logits = logits.float()
    if history is not None:
        logits = apply_repetition_penalty(logits, history, repetition_penalty)
    if temperature <= 0:
        return logits.argmax(dim=-1, keepdim=True)
    probs = sampling_probs(logits, temperature, top_k, top_p=top_p, min_p=min_p)
    return torch.multinomial(probs, num_samples=1, generator=generator)


def sampling_probs(
    logits: torch.Tensor,
    temperature: float,
    top_k: int | None = None,
    *,
    top_p: float = 1.0,
    min_p: float = 0.0,
) -> torch.Tensor:
    """The distribution ``sample_next`` draws from (temperature > 0): each row of ``logits``
    (B, vocab, float) divided by the temperature, truncated, softmaxed. Rows are independent,
    so a server can compute many requests' rows at once and draw each with its own generator."""
    if temperature < TINY_TEMPERATURE:
        # logits / temperature would overflow to +inf (softmax: nan). Each row shifted to a
        # max of 0 first is the same distribution; below the dtype's range, its limit: an
        # even draw among the likeliest tokens.
        top = logits.max(dim=-1, keepdim=True).values
        if temperature < torch.finfo(logits.dtype).tiny:
            best = (logits == top).to(logits.dtype)
            return best / best.sum(dim=-1, keepdim=True)
        logits = (logits - top) / temperature
    else:
        logits = logits / temperature
    logits = min_p_filter(top_p_filter(top_k_filter(logits, top_k), top_p), min_p)
    return F.softmax(logits, dim=-1)
