"""A minigpt model for transformers (written by ``minigpt export`` into the model folder).

Loaded with ``AutoModelForCausalLM.from_pretrained(DIR, trust_remote_code=True)``, offline.
It is minigpt's GPT (``minigpt/model/gpt.py``) line for line, with the same parameter names,
so the weights are minigpt's own; what it adds is transformers' interface: a KV cache
(``DynamicCache``) for ``generate()``, padding masks, labels and ``logits_to_keep``.

Options (config.json): ``pos`` learned | rope (rotary over the two halves of each head),
``norm`` layernorm | rmsnorm (eps 1e-5), ``qk_norm`` (RMSNorm of each head's queries and keys,
before the rotation), ``mlp`` gelu (tanh) | gelu_exact (erf) | relu2 | swiglu, ``logit_softcap``
(``cap * tanh(logits / cap)``), ``bias``, ``tie_embeddings``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn as nn
from torch.nn import functional as F
from transformers import GenerationMixin, PreTrainedModel
from transformers.cache_utils import DynamicCache
from transformers.modeling_outputs import CausalLMOutputWithPast

from .configuration_minigpt import MiniGPTConfig

# transformers 5 names the cache "cache", transformers 4 "past_key_values".
CACHE_FIELD = (
    "cache" if "cache" in CausalLMOutputWithPast.__dataclass_fields__ else "past_key_values"
)


def swiglu_hidden(n_embd: int) -> int:
    return 32 * math.ceil(8 * n_embd / 3 / 32)


class RMSNorm(nn.RMSNorm):
    """As minigpt's: the weight follows the input's dtype, so half-precision queries and keys
    take torch's fused kernel instead of its slow mixed-dtype path."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = None if self.weight is None else self.weight.to(x.dtype)
        return F.rms_norm(x, self.normalized_shape, weight, self.eps)


def make_norm(config: MiniGPTConfig, width: int) -> nn.Module:
    if config.norm == "rmsnorm":
        return RMSNorm(width, eps=1e-5)
    return nn.LayerNorm(width, bias=config.bias)


def rotate(x: torch.Tensor, pos: torch.Tensor, base: float) -> torch.Tensor:
    """Rotary embedding of ``x`` (B, H, T, D) at positions ``pos`` (T,), as minigpt's Rotary."""
    d = x.size(-1)
    inv_freq = base ** (-torch.arange(0, d, 2, dtype=torch.float32, device=x.device) / d)
    angles = torch.outer(pos.to(torch.float32), inv_freq)
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


class Attention(nn.Module):
    def __init__(self, config: MiniGPTConfig, layer: int) -> None:
        super().__init__()
        self.layer, self.n_head, self.n_embd = layer, config.n_head, config.n_embd
        self.dropout, self.config = config.dropout, config
        head = config.n_embd // config.n_head
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.q_norm = RMSNorm(head, eps=1e-5) if config.qk_norm else None
        self.k_norm = RMSNorm(head, eps=1e-5) if config.qk_norm else None

    def forward(
        self, x: torch.Tensor, pos: torch.Tensor, cache: Any, mask: torch.Tensor | None
    ) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        if self.config.pos == "rope":
            q, k = rotate(q, pos, self.config.rope_base), rotate(k, pos, self.config.rope_base)
        if cache is not None:
            k, v = cache.update(k, v, self.layer)
        past = k.size(2) - T
        if mask is None and past > 0 and T > 1:
            mask = torch.ones(T, past + T, dtype=torch.bool, device=x.device).tril(past)
        y = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=mask,
            dropout_p=self.dropout if self.training else 0.0,
            is_causal=mask is None and past == 0 and T > 1,
        )
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, config: MiniGPTConfig) -> None:
        super().__init__()
        self.kind = config.mlp
        self.hidden = swiglu_hidden(config.n_embd) if self.kind == "swiglu" else 4 * config.n_embd
        out = 2 * self.hidden if self.kind == "swiglu" else self.hidden
        self.c_fc = nn.Linear(config.n_embd, out, bias=config.bias)
        self.c_proj = nn.Linear(self.hidden, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.c_fc(x)
        if self.kind == "swiglu":
            gate, up = h.split(self.hidden, dim=-1)
            h = F.silu(gate) * up
        elif self.kind == "relu2":
            h = F.relu(h).square()
        elif self.kind == "gelu_exact":
            h = F.gelu(h)
        else:
            h = F.gelu(h, approximate="tanh")
        return self.dropout(self.c_proj(h))


class Block(nn.Module):
    def __init__(self, config: MiniGPTConfig, layer: int) -> None:
        super().__init__()
        self.ln_1 = make_norm(config, config.n_embd)
        self.attn = Attention(config, layer)
        self.ln_2 = make_norm(config, config.n_embd)
        self.mlp = MLP(config)

    def forward(
        self, x: torch.Tensor, pos: torch.Tensor, cache: Any, mask: torch.Tensor | None
    ) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), pos, cache, mask)
        return x + self.mlp(self.ln_2(x))


class MiniGPTPreTrainedModel(PreTrainedModel):
    config_class = MiniGPTConfig
    base_model_prefix = "transformer"
    _no_split_modules = ["Block"]  # noqa: RUF012
    _supports_cache_class = True

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)


class MiniGPTForCausalLM(MiniGPTPreTrainedModel, GenerationMixin):
    _tied_weights_keys = {"lm_head.weight": "transformer.wte.weight"}  # noqa: RUF012

    def __init__(self, config: MiniGPTConfig) -> None:
        super().__init__(config)
        layers: dict[str, nn.Module] = {"wte": nn.Embedding(config.vocab_size, config.n_embd)}
        if config.pos == "learned":
            layers["wpe"] = nn.Embedding(config.block_size, config.n_embd)
        self.transformer = nn.ModuleDict(
            dict(
                **layers,
                drop=nn.Dropout(config.dropout),
                h=nn.ModuleList([Block(config, i) for i in range(config.n_layer)]),
                ln_f=make_norm(config, config.n_embd),
            )
        )
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.transformer.wte

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.transformer.wte = value

    def get_output_embeddings(self) -> nn.Module:
        return self.lm_head

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        cache: Any = None,
        past_key_values: Any = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int = 0,
        **kwargs: Any,
    ) -> CausalLMOutputWithPast:
        cache = cache if cache is not None else past_key_values
        use_cache = self.config.use_cache if use_cache is None else use_cache
        if use_cache and cache is None and not self.training:
            cache = DynamicCache()
        x = self.transformer.wte(input_ids) if inputs_embeds is None else inputs_embeds
        T = x.size(1)
        past = cache.get_seq_length() if cache is not None else 0
        pos = torch.arange(past, past + T, device=x.device)
        if "wpe" in self.transformer:
            x = x + self.transformer.wpe(pos)
        x = self.transformer.drop(x)
        mask = None
        if attention_mask is not None and not bool(attention_mask.all()):
            # Padding: causal and not a pad; each position may always see itself.
            keep = attention_mask[:, None, None, -(past + T) :].bool()
            causal = torch.ones(T, past + T, dtype=torch.bool, device=x.device).tril(past)
            itself = torch.ones_like(causal).tril(past) & ~torch.ones_like(causal).tril(past - 1)
            mask = (keep & causal) | itself
        for block in self.transformer.h:
            x = block(x, pos, cache, mask)
        x = self.transformer.ln_f(x)
        if logits_to_keep:
            x = x[:, -logits_to_keep:]
        logits = self.lm_head(x)
        if self.config.logit_softcap > 0:
            cap = self.config.logit_softcap
            logits = cap * torch.tanh(logits / cap)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(
                logits[:, :-1].reshape(-1, logits.size(-1)).float(),
                labels[:, 1:].reshape(-1),
                ignore_index=-100,
            )
        return CausalLMOutputWithPast(loss=loss, logits=logits, **{CACHE_FIELD: cache})
