"""The configuration of a minigpt model for transformers (written by ``minigpt export``).

The fields are minigpt's ``ModelConfig`` under their own names; ``attribute_map`` gives them
the names transformers' generic code looks for (``hidden_size``, ``num_hidden_layers`` ...).
"""

from __future__ import annotations

from typing import Any

from transformers import PretrainedConfig


class MiniGPTConfig(PretrainedConfig):
    model_type = "minigpt"
    attribute_map = {  # noqa: RUF012 - transformers reads it as a class attribute
        "hidden_size": "n_embd",
        "num_hidden_layers": "n_layer",
        "num_attention_heads": "n_head",
        "max_position_embeddings": "block_size",
    }

    def __init__(
        self,
        vocab_size: int = 50304,
        block_size: int = 256,
        n_layer: int = 6,
        n_head: int = 6,
        n_embd: int = 384,
        dropout: float = 0.0,
        bias: bool = True,
        tie_embeddings: bool = True,
        pos: str = "learned",
        rope_base: float = 10000.0,
        norm: str = "layernorm",
        qk_norm: bool = False,
        mlp: str = "gelu",
        logit_softcap: float = 0.0,
        **kwargs: Any,
    ) -> None:
        self.vocab_size = vocab_size
        self.block_size = block_size
        self.n_layer = n_layer
        self.n_head = n_head
        self.n_embd = n_embd
        self.dropout = dropout
        self.bias = bias
        self.tie_embeddings = tie_embeddings
        self.pos = pos
        self.rope_base = rope_base
        self.norm = norm
        self.qk_norm = qk_norm
        self.mlp = mlp
        self.logit_softcap = logit_softcap
        self.use_cache = kwargs.pop("use_cache", True)
        kwargs["tie_word_embeddings"] = tie_embeddings
        super().__init__(**kwargs)
