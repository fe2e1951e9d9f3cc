"""The GPT-2 model, written to be read.

    tokens -> wte (token embedding) + wpe (learned position embedding)
           -> n_layer x Block:  x = x + attn(ln_1(x));  x = x + mlp(ln_2(x))
           -> ln_f -> lm_head (tied to wte) -> logits over the vocabulary

Parameter names follow GPT-2 (``transformer.h.0.attn.c_attn.weight`` ...), so the numbers of
the course's parameter count and the Hugging Face layout map one to one.

Modern options (``ModelConfig``; the defaults keep exactly GPT-2):

- ``pos="rope"``: rotary position embeddings rotate queries and keys (no ``wpe`` table);
- ``norm="rmsnorm"``: RMSNorm instead of LayerNorm (scale only, no mean, no bias);
- ``qk_norm``: RMSNorm on each head's queries and keys, which keeps attention logits tame;
- ``mlp="gelu_exact"``: the exact (erf) GELU of ``nn.GELU()``, as nanoGPT has it, instead of
  GPT-2's tanh approximation (``mlp="gelu"``), which costs several times more on a CPU;
- ``mlp="relu2"`` (ReLU squared) or ``mlp="swiglu"`` (gated, 2/3 of the width, same size);
- ``logit_softcap``: ``cap * tanh(logits / cap)`` bounds the output logits;
- ``zero_init_proj``: every block starts as the identity (output projections at zero).

Generation keeps a ``KVCache`` (``kv_cache.py``): the prompt is run once (prefill), then each
new token attends to the cached keys and values of the past instead of recomputing them
(docs/generation.md).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn as nn
from torch.nn import functional as F

from minigpt.config import ModelConfig, swiglu_hidden
from minigpt.model.kv_cache import KVCache, cached_attention_kernels  # KVCache: re-exported
from minigpt.model.sampling import sample_next
from minigpt.model.segments import segment_positions


class RMSNorm(nn.RMSNorm):
    """``nn.RMSNorm`` whose weight follows the input's dtype. Under bf16/fp16 autocast the
    queries and keys that QK-norm sees come out of a half-precision matmul, and an fp32 weight
    beside them sends torch to its slow unfused path ("Mismatch dtype ... Cannot dispatch to
    fused implementation"); the fused kernel still accumulates in fp32."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = None if self.weight is None else self.weight.to(x.dtype)
        return F.rms_norm(x, self.normalized_shape, weight, self.eps)


def make_norm(config: ModelConfig) -> nn.Module:
    """LayerNorm (GPT-2) or RMSNorm, which skips the mean and the bias: cheaper, as good."""
    if config.norm == "rmsnorm":
        return RMSNorm(config.n_embd, eps=1e-5)
    return nn.LayerNorm(config.n_embd, bias=config.bias)


class Rotary(nn.Module):
    """Rotary position embedding (RoPE, Su et al. 2021).

    Each pair of channels of a query or key is rotated by an angle proportional to the token's
    position, a different frequency per pair. The dot product of a query at position m with a
    key at position n then depends only on m - n: attention sees relative positions, and there
    is no position table to learn. The angles are a fixed buffer, not parameters.
    """

    def __init__(self, head_size: int, max_len: int, base: float = 10000.0) -> None:
        super().__init__()
        inv_freq = base ** (-torch.arange(0, head_size, 2, dtype=torch.float32) / head_size)
        angles = torch.outer(torch.arange(max_len, dtype=torch.float32), inv_freq)
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)

    def forward(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """Rotate ``x`` (B, n_head, T, head_size) whose tokens sit at positions ``pos``: (T,),
        or (B, T) when each row has its own (packed conversations, batched serving)."""
        cos, sin = self.cos[pos].to(x.dtype), self.sin[pos].to(x.dtype)
        if pos.dim() == 2:  # (B, T, half) -> (B, 1, T, half): the same angles for every head
            cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
        x1, x2 = x.chunk(2, dim=-1)
        return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention where each position sees only itself and the past."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.n_head = config.n_head
        self.n_embd = config.n_embd
        self.dropout = config.dropout
        head_size = config.n_embd // config.n_head
        # One matmul makes queries, keys and values for all heads at once.
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.rotary = (
            Rotary(head_size, config.block_size, config.rope_base) if config.pos == "rope" else None
        )
        self.q_norm = RMSNorm(head_size, eps=1e-5) if config.qk_norm else None
        self.k_norm = RMSNorm(head_size, eps=1e-5) if config.qk_norm else None

    def forward(
        self,
        x: torch.Tensor,
        pos: torch.Tensor,
        kv_cache: KVCache | None = None,
        layer: int = 0,
        doc_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        # (B, T, C) -> (B, n_head, T, head_size): heads become a batch dimension.
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        if self.rotary is not None:
            # Rotated at their absolute positions before caching: cached keys stay valid.
            q, k = self.rotary(q, pos), self.rotary(k, pos)
        # Without a cache: the plain causal mask, or causal within each packed document.
        mask, causal = doc_mask, T > 1 and doc_mask is None
        if kv_cache is not None:
            # The T new queries attend to every cached position plus themselves; the cache
            # says which of its keys each query may see.
            k, v = kv_cache.update(layer, k, v)
            mask, causal = kv_cache.attention_mask(T, x.device)
        # softmax(q k^T / sqrt(d)) v; SDPA picks flash or memory-efficient kernels where the
        # hardware has them.
        y = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=mask,
            dropout_p=self.dropout if self.training else 0.0,
            is_causal=causal,
        )
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class ReLU2(nn.Module):
    """ReLU squared (So et al. 2021): as cheap as ReLU, learns faster than GELU."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x).square()


def mlp_activation(kind: str) -> nn.Module:
    """The MLP's non-linearity: GPT-2's tanh GELU ("gelu", what old checkpoints mean), the
    exact erf GELU ("gelu_exact", nanoGPT's ``nn.GELU()``) or ReLU squared."""
    if kind == "relu2":
        return ReLU2()
    return nn.GELU() if kind == "gelu_exact" else nn.GELU(approximate="tanh")


class MLP(nn.Module):
    """Position-wise feed-forward: widen 4x, GELU (or ReLU squared), project back."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.act = mlp_activation(config.mlp)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.act(self.c_fc(x))))


class SwiGLU(nn.Module):
    """Gated feed-forward (Shazeer 2020): ``c_proj(silu(gate) * up)``.

    ``c_fc`` makes the gate and the up projection in one matmul. The hidden width is
    ``swiglu_hidden(n_embd)``, about 2/3 of 4x, so the block has GPT-2's parameter count.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.hidden = swiglu_hidden(config.n_embd)
        self.c_fc = nn.Linear(config.n_embd, 2 * self.hidden, bias=config.bias)
        self.c_proj = nn.Linear(self.hidden, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.c_fc(x).split(self.hidden, dim=-1)
        return self.dropout(self.c_proj(F.silu(gate) * up))


class Block(nn.Module):
    """A pre-norm transformer block: attention then MLP, each added to the residual."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.ln_1 = make_norm(config)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = make_norm(config)
        self.mlp = SwiGLU(config) if config.mlp == "swiglu" else MLP(config)

    def forward(
        self,
        x: torch.Tensor,
        pos: torch.Tensor,
        kv_cache: KVCache | None = None,
        layer: int = 0,
        doc_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), pos, kv_cache, layer, doc_mask)
        x = x + self.mlp(self.ln_2(x))
        return x


class GPT(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if config.vocab_size <= 0:
            raise ValueError("vocab_size must be set (train takes it from the dataset)")
        self.config = config
        layers = dict(wte=nn.Embedding(config.vocab_size, config.n_embd))
        if config.pos == "learned":
            layers["wpe"] = nn.Embedding(config.block_size, config.n_embd)
        self.transformer = nn.ModuleDict(
            dict(
                **layers,
                drop=nn.Dropout(config.dropout),
                h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
                ln_f=make_norm(config),
            )
        )
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if config.tie_embeddings:
            # Weight tying: the output projection is the token embedding (saves vocab x n_embd).
            self.lm_head.weight = self.transformer.wte.weight
        self.apply(self._init_weights)
        # GPT-2: residual projections scaled by 1/sqrt(2 n_layer), since each block adds two
        # of them to the residual stream and its variance would otherwise grow with depth.
        # With zero_init_proj they start at zero instead: each block is the identity at first,
        # and the residual stream grows only as the blocks learn something.
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                if config.zero_init_proj:
                    nn.init.zeros_(p)
                else:
                    nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_params(self, non_embedding: bool = False) -> int:
        """Parameters counted once (tied weights once); optionally without position embeddings."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding and "wpe" in self.transformer:
            n -= self.transformer.wpe.weight.numel()
        return n

    def forward(
        self,
        idx: torch.Tensor,
        targets: torch.Tensor | None = None,
        kv_cache: KVCache | None = None,
        last_only: bool = False,
        segments: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits (B, T, vocab) and, given targets, the mean cross-entropy loss.

        Targets of -100 are left out of the mean (chat training: prompts are not trained on).
        ``segments`` (B, T) numbers the documents packed into each row (non-decreasing): a
        token attends only within its own document, whose positions start again at 0.

        With a ``kv_cache``, ``idx`` holds only the new tokens: they take the positions that
        follow the cached ones (``KVCache``, or ``SlotKVCache`` where each row of a served batch
        has its own length) and also attend to the cached past. ``last_only`` computes the
        logits of the last position only (B, 1, vocab): all that generation needs, and it
        skips a T x vocab matmul.
        """
        B, T = idx.shape
        end = kv_cache.longest_after(T) if kv_cache is not None else T
        if end > self.config.block_size:
            raise ValueError(
                f"sequence of {end} tokens exceeds block_size {self.config.block_size}"
            )
        if kv_cache is not None:
            pos = kv_cache.positions(T, idx.device)
        else:
            pos = torch.arange(T, device=idx.device)
        doc_mask = None
        if segments is not None:
            pos, doc_mask = segment_positions(segments)
        x = self.transformer.wte(idx)
        if "wpe" in self.transformer:
            x = x + self.transformer.wpe(pos)
        x = self.transformer.drop(x)
        with cached_attention_kernels(kv_cache, idx.device):
            for layer, block in enumerate(self.transformer.h):
                x = block(x, pos, kv_cache, layer, doc_mask)
        if kv_cache is not None:
            kv_cache.advance(T)
        x = self.transformer.ln_f(x)
        logits = self.lm_head(x[:, [-1], :] if last_only else x)
        if self.config.logit_softcap > 0:
            # Soft-capping (Gemma 2): smooth, bounded logits, so no token gets overconfident.
            cap = self.config.logit_softcap
            logits = cap * torch.tanh(logits / cap)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)).float(), targets.reshape(-1))
        return logits, loss

    @torch.no_grad()
    def generate(
        self,
        idx: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
        **options: Any,
    ) -> torch.Tensor:
        """``idx`` (B, T) followed by ``max_new_tokens`` sampled tokens; temperature 0 is greedy.

        ``options``: ``use_cache`` and ``context_shift`` (see ``generate_tokens``); ``top_p``,
        ``min_p`` and ``repetition_penalty`` (see ``generation.sample_next``).
        """
        new = self.generate_tokens(idx, max_new_tokens, temperature, top_k, generator, **options)
        return torch.cat([idx, *new], dim=1)

    @torch.no_grad()
    def generate_tokens(
        self,
        idx: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
        use_cache: bool = True,
        context_shift: int = 1,
        vocab_limit: int | None = None,
        **sampling: Any,
    ) -> Iterator[torch.Tensor]:
        """Yield the next token ids (B, 1) one step at a time, continuing ``idx`` (B, T).

        Without a cache every step re-runs the model on the last ``block_size`` tokens. With
        it, the context is run once (prefill) and each step feeds only the newest token. The
        cache holds ``block_size`` positions, and learned position embeddings are baked into
        every cached key and value, so a full cache cannot simply drop its oldest entry: the
        window slides by re-running the last ``block_size - context_shift + 1`` tokens from
        position 0. ``context_shift=1`` keeps a whole block of context, exactly what the
        uncached model sees (but every step past ``block_size`` then costs a full forward);
        a larger shift re-prefills only once every ``context_shift`` tokens, trading the
        oldest context for speed. ``vocab_limit`` (the tokenizer's size) keeps the draw to ids
        below it: a vocabulary padded past the tokenizer's (``--vocab-size 8192`` on 65
        characters) has rows no text maps to, which an undertrained model may still pick.
        """
        block_size = self.config.block_size
        if idx.size(1) == 0:
            raise ValueError("generation needs at least one context token")
        if not 1 <= context_shift <= block_size:
            raise ValueError(f"context_shift must be in [1, block_size={block_size}]")
        cache = KVCache(block_size) if use_cache else None
        seq, fresh = idx, idx[:, -block_size:]  # fresh: the tokens the model has not seen
        for _ in range(max_new_tokens):
            if cache is None:
                logits, _ = self(seq[:, -block_size:], last_only=True)
            else:
                if cache.pos + fresh.size(1) > block_size:  # full: slide the window
                    cache.reset()
                    fresh = seq[:, -(block_size - context_shift + 1) :]
                logits, _ = self(fresh, kv_cache=cache, last_only=True)
            next_id = sample_next(
                logits[:, -1, :vocab_limit], temperature, top_k, generator, history=seq, **sampling
            )
            seq, fresh = torch.cat((seq, next_id), dim=1), next_id
            yield next_id
