"""How big a model is and how much compute it needs."""

from __future__ import annotations

from minigpt.config import ModelConfig
from minigpt.model import swiglu_hidden


def non_embedding_params(config: ModelConfig) -> int:
    """Parameters that take part in the per-token matmuls (all but the embeddings).

    Follows the model's options: RMSNorm has a gain and no bias, QK-norm adds two gains of
    head size per block, SwiGLU has three matrices of ``swiglu_hidden(d)``; rotary position
    embeddings have no parameters (and learned ones count as embeddings).
    """
    d, b = config.n_embd, int(config.bias)
    ln = d if config.norm == "rmsnorm" else d + b * d
    attn = 4 * d * d + b * 4 * d
    if config.qk_norm:
        attn += 2 * (d // config.n_head)
    if config.mlp == "swiglu":
        h = swiglu_hidden(d)
        mlp = 3 * d * h + b * (2 * h + d)
    else:
        mlp = 8 * d * d + b * 5 * d
    head = 0 if config.tie_embeddings else config.vocab_size * d
    return config.n_layer * (2 * ln + attn + mlp) + ln + head


def flops_per_token(config: ModelConfig, seq_len: int | None = None) -> int:
    """Training FLOPs per token: 6N for the matmuls plus the attention term 12 L T d.

    N counts the weights each token multiplies through, including the output head (which is
    the tied embedding when weights are tied); T is the sequence length (default block_size).
    Forward is 1/3 of it, backward 2/3.
    """
    t = seq_len or config.block_size
    n = non_embedding_params(config)
    if config.tie_embeddings:
        n += config.vocab_size * config.n_embd  # the head's matmul still costs
    return 6 * n + 12 * config.n_layer * t * config.n_embd
