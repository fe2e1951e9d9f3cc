"""Packed documents: several conversations in one row, each attending only to itself.

Packing fills a training row with whole conversations instead of padding; without a mask, a
reply could attend to the conversation before it, which it never sees at inference. With the
mask and positions restarting at each document, a packed row computes exactly what its
documents would one by one.
"""

from __future__ import annotations

import torch


def segment_positions(segments: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions (B, T) restarting at each document and the attention mask (B, 1, T, T) that
    lets a token see only the earlier tokens of its own document."""
    T = segments.size(1)
    index = torch.arange(T, device=segments.device).expand_as(segments)
    first = torch.ones_like(segments, dtype=torch.bool)
    first[:, 1:] = segments[:, 1:] != segments[:, :-1]
    starts = torch.cummax(torch.where(first, index, torch.zeros_like(index)), dim=1).values
    same = segments.unsqueeze(2) == segments.unsqueeze(1)
    causal = torch.ones(T, T, dtype=torch.bool, device=segments.device).tril()
    return index - starts, (same & causal).unsqueeze(1)
