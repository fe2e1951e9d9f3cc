"""Decoding with a cache: the past keys and values, and the attention kernels that suit them.

Only generation uses any of this. Training and evaluation run the whole sequence at once, and
``gpt.py`` is the file a learner reads as the model (as nanoGPT's ``model.py``): the model only
needs to know that a cache, when it gets one, stores each layer's new keys and values and says
where the new tokens sit and what they may see. How the cache is laid out, and which SDPA
kernels suit attention over it on a GPU, live here, so that ``gpt.py`` reads top to bottom as
the model: attention -> MLP -> block -> GPT. ``SlotKVCache`` (``slot_cache.py``) builds on
``KVCache`` for batched serving. ``KVCache`` is still importable from ``minigpt.model.gpt``.
"""

from __future__ import annotations

import contextlib

import torch


def cached_attention_kernels(
    kv_cache: object | None, device: torch.device
) -> contextlib.AbstractContextManager:
    """SDPA's kernels for attention over a cache on a CUDA device: flash, memory-efficient or
    math, not cuDNN's. cuDNN attention, torch's first choice for bf16 on Hopper, builds a plan
    for each new key length the first time it meets it, and decoding meets a new one at every
    token: a first bf16 pass at the GPT-2 124M shape on an H200 ran 21 tokens/s with it and
    242 without (fp32, which never used cuDNN's kernel, 327)."""
    if kv_cache is None or device.type != "cuda":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    backends = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]
    return sdpa_kernel(backends)


class KVCache:
    """Keys and values of the positions seen so far, per layer, for one generation.

    Each layer's tensors are allocated on first use with room for ``max_len`` positions, so the
    cache follows the model's device, dtype and head layout. ``pos`` is the number of positions
    filled, which is also the position of the next token: positions are explicit, and a model
    that encodes them in q and k (rotary embeddings) reads them from here.
    """

    def __init__(self, max_len: int) -> None:
        self.max_len = max_len
        self.pos = 0
        self.k: dict[int, torch.Tensor] = {}
        self.v: dict[int, torch.Tensor] = {}

    def update(
        self, layer: int, k: torch.Tensor, v: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Store new keys/values (B, heads, T, head_size) of ``layer``; return all so far."""
        start, end = self.pos, self.pos + k.size(2)
        if end > self.max_len:
            raise ValueError(f"KV cache holds {self.max_len} positions, {end} needed")
        if layer not in self.k:
            B, H, _, D = k.shape
            self.k[layer] = k.new_zeros(B, H, self.max_len, D)
            self.v[layer] = v.new_zeros(B, H, self.max_len, D)
        self.k[layer][:, :, start:end] = k
        self.v[layer][:, :, start:end] = v
        return self.k[layer][:, :, :end], self.v[layer][:, :, :end]

    def reset(self) -> None:
        """Forget every position (the tensors are kept and overwritten)."""
        self.pos = 0

    def longest_after(self, T: int) -> int:
        """Length of the sequence once ``T`` more tokens are in."""
        return self.pos + T

    def positions(self, T: int, device: torch.device) -> torch.Tensor:
        """Positions (T,) of ``T`` new tokens: they follow the ones cached."""
        return torch.arange(self.pos, self.pos + T, device=device)

    def attention_mask(self, T: int, device: torch.device) -> tuple[torch.Tensor | None, bool]:
        """(mask, is_causal) for ``T`` new queries attending to the cache, as SDPA takes them.

        Query i (at position past + i) may see keys 0 .. past + i. Without a past this is the
        plain causal mask; a single new token sees everything, so it needs no mask.
        """
        past = self.pos
        if past > 0 and T > 1:
            return torch.ones(T, past + T, dtype=torch.bool, device=device).tril(past), False
        return None, past == 0 and T > 1

    def advance(self, T: int) -> None:
        """Count ``T`` new positions as filled (after every layer has stored them)."""
        self.pos += T
