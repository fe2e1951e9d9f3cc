"""A KV cache with one slot per sequence of a served batch, each slot at its own length.

``KVCache`` (kv_cache.py) holds one generation whose rows all have the same length. A server that
batches requests as they come (continuous batching) runs one decode step for sequences that
started at different times: row b sits at position ``lengths[b]``, so it needs its own
positions (rotary angles, learned position rows) and its own attention mask, which hides the
unfilled end of its slot.

The storage is allocated once: per layer, keys and values of shape
(slots, n_head, max_len, head_size). A forward pass works on the rows chosen with ``use``
(any subset of slots, in any order); ``slot_view`` gives a plain ``KVCache`` whose tensors are
views of one slot, so a new request's prompt is run exactly as ``minigpt sample`` runs it
(one sequence, causal mask) while writing straight into the slot.
"""

from __future__ import annotations

import torch

from minigpt.model.kv_cache import KVCache


class SlotKVCache(KVCache):
    """Keys and values of ``slots`` independent sequences of up to ``max_len`` positions."""

    def __init__(
        self,
        slots: int,
        n_layer: int,
        n_head: int,
        head_size: int,
        max_len: int,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__(max_len)
        shape = (slots, n_head, max_len, head_size)
        for layer in range(n_layer):
            self.k[layer] = torch.zeros(shape, device=device, dtype=dtype)
            self.v[layer] = torch.zeros(shape, device=device, dtype=dtype)
        self.slots = slots
        self.lengths = [0] * slots
        self.rows: list[int] = []
        self._index: torch.Tensor | None = None  # rows as a tensor, None when they are 0..B-1
        self._slots = torch.zeros(0, 1, dtype=torch.long)
        # per forward pass (reset by ``use`` and ``advance``), the same for every layer:
        self._positions: dict[int, torch.Tensor] = {}  # T -> (B, T)
        self._masks: dict[int, torch.Tensor] = {}  # T -> (B, 1, T, L)

    def slot_view(self, slot: int) -> KVCache:
        """An empty ``KVCache`` writing into ``slot``; ``set_length`` records what it filled."""
        view = KVCache(self.max_len)
        for layer in self.k:
            view.k[layer] = self.k[layer][slot : slot + 1]
            view.v[layer] = self.v[layer][slot : slot + 1]
        return view

    def set_length(self, slot: int, length: int) -> None:
        self.lengths[slot] = length

    def use(self, rows: list[int]) -> None:
        """The slots that the next forward pass runs, one per row of its batch."""
        self.rows = list(rows)
        contiguous = self.rows == list(range(len(self.rows)))
        device = next(iter(self.k.values())).device
        self._slots = torch.tensor(self.rows, device=device)[:, None]
        self._index = None if contiguous else self._slots[:, 0]
        self._positions, self._masks = {}, {}

    def longest_after(self, T: int) -> int:
        return max(self.lengths[r] for r in self.rows) + T

    def positions(self, T: int, device: torch.device) -> torch.Tensor:
        """(B, T): row b's new tokens follow its own ``lengths`` entry."""
        if T not in self._positions:
            starts = torch.tensor([self.lengths[r] for r in self.rows], device=device)
            self._positions[T] = starts[:, None] + torch.arange(T, device=device)
        return self._positions[T]

    def update(
        self, layer: int, k: torch.Tensor, v: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Store each row's new keys/values at its own positions; return the rows' caches up
        to the longest row (the mask hides what lies past each row's end)."""
        B, _, T, _ = k.shape
        pos = self.positions(T, k.device)
        # (B, T) index pairs select (B, T, n_head, head_size) places: the new keys, head-last.
        self.k[layer][self._slots, :, pos] = k.transpose(1, 2)
        self.v[layer][self._slots, :, pos] = v.transpose(1, 2)
        end = self.longest_after(T)
        if self._index is None:
            return self.k[layer][:B, :, :end], self.v[layer][:B, :, :end]
        keys = self.k[layer][:, :, :end].index_select(0, self._index)
        return keys, self.v[layer][:, :, :end].index_select(0, self._index)

    def attention_mask(self, T: int, device: torch.device) -> tuple[torch.Tensor | None, bool]:
        """(B, 1, T, L) booleans: query i of row b sees keys 0 .. lengths[b] + i."""
        if T not in self._masks:
            last = self.positions(T, device)  # the position of each query, (B, T)
            keys = torch.arange(self.longest_after(T), device=device)
            self._masks[T] = (keys[None, None, :] <= last[:, :, None]).unsqueeze(1)
        return self._masks[T], False

    def advance(self, T: int) -> None:
        for r in self.rows:
            self.lengths[r] += T
        self._positions, self._masks = {}, {}

    def move(self, src: int, dst: int) -> None:
        """Copy slot ``src`` (its filled part) into slot ``dst``, to keep live slots packed."""
        n = self.lengths[src]
        for layer in self.k:
            self.k[layer][dst, :, :n] = self.k[layer][src, :, :n]
            self.v[layer][dst, :, :n] = self.v[layer][src, :, :n]
        self.lengths[dst] = n

    def reset(self) -> None:
        self.lengths = [0] * self.slots
