"""minigpt's classic GPT <-> transformers' ``GPT2LMHeadModel``.

The two are the same network with the same parameter names (``transformer.h.0.attn.c_attn``
...). Three things differ, and this module is where they are handled:

- GPT-2 keeps its attention and MLP projections in ``Conv1D`` layers, whose weight is
  (in, out): the transpose of ``nn.Linear``'s (out, in);
- GPT-2 always has biases: a minigpt model with ``bias=False`` is written with zero biases
  (the same function), and ``config.json`` records that, so importing it back drops them;
- GPT-2's ``n_positions`` is minigpt's ``block_size``;
- GPT-2's GELU is the tanh approximation (``activation_function="gelu_new"``, minigpt's
  ``mlp="gelu"``); a model with the exact GELU (``mlp="gelu_exact"``, nanoGPT's) is written
  with ``activation_function="gelu"``, which transformers computes with the erf GELU.
"""

from __future__ import annotations

from typing import Any

import torch

from minigpt.config import ModelConfig
from minigpt.errors import MiniGPTError
from minigpt.interop.hf_base import HFArchitecture, Tensors, check_weights, require

# Written into config.json so that an exported model imports back exactly (transformers keeps
# unknown config keys as plain attributes and otherwise ignores them).
MINIGPT_KEY = "minigpt"
# nn.Linear in minigpt, Conv1D in GPT-2: stored transposed.
CONV1D_WEIGHTS = (
    "attn.c_attn.weight",
    "attn.c_proj.weight",
    "mlp.c_fc.weight",
    "mlp.c_proj.weight",
)
# Causal-mask buffers that old GPT-2 checkpoints store alongside the weights.
MASK_BUFFERS = (".attn.bias", ".attn.masked_bias")
# GPT-2's GELU is the tanh approximation; transformers calls it by these names.
TANH_GELUS = ("gelu_new", "gelu_pytorch_tanh")
EXACT_GELU = "gelu"  # transformers' name for nn.GELU() (erf): minigpt's mlp="gelu_exact"


def gpt2_config(config: ModelConfig) -> dict[str, Any]:
    """The ``config.json`` of the GPT2LMHeadModel that computes what ``config``'s GPT does."""
    return {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "vocab_size": config.vocab_size,
        "n_positions": config.block_size,
        "n_embd": config.n_embd,
        "n_layer": config.n_layer,
        "n_head": config.n_head,
        "n_inner": None,
        "activation_function": EXACT_GELU if config.mlp == "gelu_exact" else "gelu_new",
        "resid_pdrop": config.dropout,
        "embd_pdrop": config.dropout,
        "attn_pdrop": config.dropout,
        "layer_norm_epsilon": 1e-5,
        "initializer_range": 0.02,
        "scale_attn_weights": True,
        "scale_attn_by_inverse_layer_idx": False,
        "reorder_and_upcast_attn": False,
        "add_cross_attention": False,
        "tie_word_embeddings": config.tie_embeddings,
        "use_cache": True,
        MINIGPT_KEY: {"bias": config.bias, "tie_embeddings": config.tie_embeddings},
    }


def to_gpt2_tensors(state: Tensors, config: ModelConfig) -> Tensors:
    """minigpt weights (as in its checkpoints) -> GPT2LMHeadModel weights.

    Conv1D weights are transposed; without biases, zero biases are added, so the exported
    model computes exactly the same logits; a tied head is stored once, as ``wte``.
    """
    out: Tensors = {}
    for name, tensor in state.items():
        if name == "lm_head.weight" and config.tie_embeddings:
            continue
        out[name] = (tensor.t() if name.endswith(CONV1D_WEIGHTS) else tensor).contiguous()
        if not config.bias and name.startswith(("transformer.h.", "transformer.ln_f.")):
            bias = name.removesuffix(".weight") + ".bias"
            out.setdefault(bias, torch.zeros(tensor.shape[0], dtype=tensor.dtype))
    return out


def config_from_gpt2(hf: dict[str, Any], folder: str) -> ModelConfig:
    """The ModelConfig of a GPT-2 ``config.json``; refuses variants minigpt's GPT cannot run."""
    n_embd, n_head = int(hf.get("n_embd", 768)), int(hf.get("n_head", 12))
    activation = hf.get("activation_function", "gelu_new")
    checks = [
        (activation in (*TANH_GELUS, EXACT_GELU), "activation_function"),
        (hf.get("n_inner") in (None, 4 * n_embd), "n_inner"),
        (hf.get("scale_attn_weights", True) is True, "scale_attn_weights"),
        (not hf.get("scale_attn_by_inverse_layer_idx", False), "scale_attn_by_inverse_layer_idx"),
        (not hf.get("add_cross_attention", False), "add_cross_attention"),
        (float(hf.get("layer_norm_epsilon", 1e-5)) == 1e-5, "layer_norm_epsilon"),
        (n_embd % n_head == 0, "n_head"),
    ]
    require(checks, hf, folder, "GPT-2")
    ours = hf.get(MINIGPT_KEY) or {}
    return ModelConfig(
        vocab_size=int(hf.get("vocab_size", 50257)),
        block_size=int(hf.get("n_positions", 1024)),
        n_layer=int(hf.get("n_layer", 12)),
        n_head=n_head,
        n_embd=n_embd,
        dropout=float(hf.get("resid_pdrop", 0.0)),
        bias=bool(ours.get("bias", True)),
        tie_embeddings=bool(hf.get("tie_word_embeddings", True)),
        mlp="gelu_exact" if activation == EXACT_GELU else "gelu",
    )


def from_gpt2_tensors(tensors: Tensors, config: ModelConfig, folder: str) -> Tensors:
    """GPT-2 weights -> minigpt weights in float32, for ``config`` (whose block_size may be
    smaller than the model's n_positions: the first position embeddings are kept)."""
    out: Tensors = {}
    for name, tensor in tensors.items():
        if name.endswith(MASK_BUFFERS):
            continue
        if not name.startswith(("transformer.", "lm_head.")):
            name = "transformer." + name  # saved from GPT2Model, as the original gpt2 weights are
        if name.endswith(CONV1D_WEIGHTS):
            tensor = tensor.t()
        out[name] = tensor.to(torch.float32).contiguous()
    if config.tie_embeddings:
        out.pop("lm_head.weight", None)
    if not config.bias:
        biases = [k for k in out if k.endswith(".bias")]
        if any(out[k].count_nonzero() for k in biases):
            raise MiniGPTError(
                f"{folder}'s config.json says bias=False, but its biases are not zero; "
                f"remove the {MINIGPT_KEY!r} entry from config.json to import it with biases"
            )
        for k in biases:
            del out[k]
    if "transformer.wpe.weight" in out:
        out["transformer.wpe.weight"] = out["transformer.wpe.weight"][: config.block_size].clone()
    return check_weights(out, config, folder)


GPT2 = HFArchitecture(
    name="GPT-2",
    model_type="gpt2",
    fixed={},
    free=frozenset({"bias", "tie_embeddings"}),
    choices={"mlp": ("gelu", "gelu_exact")},
    config=gpt2_config,
    to_hf=to_gpt2_tensors,
    model_config=config_from_gpt2,
    from_hf=from_gpt2_tensors,
)
