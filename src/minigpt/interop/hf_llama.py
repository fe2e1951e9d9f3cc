"""minigpt's modern GPT <-> transformers' Llama, Qwen3 and Arcee, which share one layout.

Read from transformers' own modeling code (``models/{llama,qwen3,arcee}``), the three are
minigpt's GPT with ``pos="rope"`` and ``norm="rmsnorm"`` exactly when:

- rotary embeddings: both rotate the two halves of each head (``rotate_half``, not
  interleaved pairs), over the whole head, with ``inv_freq = base^(-2i/head_size)``, applied
  to queries and keys after the (optional) QK-norm: the same angles and the same order;
- RMSNorm with a weight and eps 1e-5 (``nn.RMSNorm(eps=1e-5)`` in minigpt), computed in fp32;
- Llama: SwiGLU (``down(silu(gate(x)) * up(x))``), biases in attention and MLP alike;
- Qwen3: Llama plus a per-head RMSNorm of queries and keys (``qk_norm``) before the rotation;
  its MLP never has biases, so only ``bias=False`` maps;
- Arcee: Llama with a plain ``down(relu2(up(x)))`` MLP: minigpt's ``mlp="relu2"``.

None has a learned position table, output soft-capping or LayerNorm: those go to the remote
code architecture (``hf_remote``). Weights: minigpt's fused ``c_attn`` is split into
``q_proj``/``k_proj``/``v_proj``, and SwiGLU's fused ``c_fc`` into ``gate_proj``/``up_proj``.
"""

from __future__ import annotations

import re
from typing import Any

import torch

from minigpt.config import ModelConfig, swiglu_hidden
from minigpt.interop.hf_base import (
    HFArchitecture,
    Tensors,
    check_weights,
    plain_rope,
    require,
    rope_theta,
)

RMS_EPS = 1e-5  # minigpt's nn.RMSNorm(eps=1e-5), in the blocks and in QK-norm
# minigpt name -> Llama name, per block; c_attn and a gated c_fc are split separately.
BLOCK_NAMES = {
    "ln_1.weight": "input_layernorm.weight",
    "ln_2.weight": "post_attention_layernorm.weight",
    "attn.c_proj.weight": "self_attn.o_proj.weight",
    "attn.c_proj.bias": "self_attn.o_proj.bias",
    "attn.q_norm.weight": "self_attn.q_norm.weight",
    "attn.k_norm.weight": "self_attn.k_norm.weight",
    "mlp.c_proj.weight": "mlp.down_proj.weight",
    "mlp.c_proj.bias": "mlp.down_proj.bias",
}
TOP_NAMES = {
    "transformer.wte.weight": "model.embed_tokens.weight",
    "transformer.ln_f.weight": "model.norm.weight",
    "lm_head.weight": "lm_head.weight",
}
BLOCK = re.compile(r"transformer\.h\.(\d+)\.(.+)")
HF_BLOCK = re.compile(r"model\.layers\.(\d+)\.(.+)")
ROTARY = dict(pos="rope", norm="rmsnorm")


def _arch(config: ModelConfig) -> tuple[str, str]:
    """(architectures entry, model_type) of the class that expresses ``config``."""
    if config.qk_norm:
        return "Qwen3ForCausalLM", "qwen3"
    if config.mlp == "relu2":
        return "ArceeForCausalLM", "arcee"
    return "LlamaForCausalLM", "llama"


def llama_config(config: ModelConfig) -> dict[str, Any]:
    """config.json of the Llama-family class that computes what ``config``'s GPT does."""
    architecture, model_type = _arch(config)
    gated = config.mlp == "swiglu"
    hf: dict[str, Any] = {
        "architectures": [architecture],
        "model_type": model_type,
        "vocab_size": config.vocab_size,
        "hidden_size": config.n_embd,
        "intermediate_size": swiglu_hidden(config.n_embd) if gated else 4 * config.n_embd,
        "num_hidden_layers": config.n_layer,
        "num_attention_heads": config.n_head,
        "num_key_value_heads": config.n_head,
        "head_dim": config.n_embd // config.n_head,
        "hidden_act": "silu" if gated else "relu2",
        "max_position_embeddings": config.block_size,
        "rms_norm_eps": RMS_EPS,
        "rope_parameters": {"rope_type": "default", "rope_theta": config.rope_base},
        "rope_theta": config.rope_base,  # transformers 4's key
        "attention_bias": config.bias,
        "attention_dropout": config.dropout,
        "tie_word_embeddings": config.tie_embeddings,
        "initializer_range": 0.02,
        "use_cache": True,
    }
    if model_type == "qwen3":
        hf.update(use_sliding_window=False, sliding_window=None, max_window_layers=config.n_layer)
        hf["layer_types"] = ["full_attention"] * config.n_layer
    else:
        hf["mlp_bias"] = config.bias
    return hf


def to_llama_tensors(state: Tensors, config: ModelConfig) -> Tensors:
    """minigpt weights -> Llama-family weights (fused projections split, nothing transposed)."""
    out: Tensors = {}
    for name, tensor in state.items():
        if name == "lm_head.weight" and config.tie_embeddings:
            continue
        match = BLOCK.fullmatch(name)
        if match is None:
            out[TOP_NAMES[name]] = tensor
            continue
        prefix, rest = f"model.layers.{match[1]}.", match[2]
        kind = rest.rsplit(".", 1)[-1]  # weight or bias
        if rest.startswith("attn.c_attn."):
            for proj, part in zip("qkv", tensor.chunk(3, dim=0), strict=True):
                out[f"{prefix}self_attn.{proj}_proj.{kind}"] = part
        elif rest.startswith("mlp.c_fc.") and config.mlp == "swiglu":
            gate, up = tensor.chunk(2, dim=0)
            out[f"{prefix}mlp.gate_proj.{kind}"] = gate
            out[f"{prefix}mlp.up_proj.{kind}"] = up
        elif rest.startswith("mlp.c_fc."):
            out[f"{prefix}mlp.up_proj.{kind}"] = tensor
        else:
            out[prefix + BLOCK_NAMES[rest]] = tensor
    return {k: v.contiguous() for k, v in out.items()}


def config_from_llama(hf: dict[str, Any], folder: str) -> ModelConfig:
    """The ModelConfig of a Llama, Qwen3 or Arcee ``config.json`` minigpt's GPT computes."""
    model_type = hf.get("model_type")
    n_embd, n_head = int(hf.get("hidden_size", 4096)), int(hf.get("num_attention_heads", 32))
    head_dim = hf.get("head_dim") or n_embd // max(n_head, 1)
    mlp = "relu2" if model_type == "arcee" else "swiglu"
    width = 4 * n_embd if mlp == "relu2" else swiglu_hidden(n_embd)
    attention_bias = bool(hf.get("attention_bias", False))
    mlp_bias = bool(hf.get("mlp_bias", False))
    checks = [
        (hf.get("num_key_value_heads") in (None, n_head), "num_key_value_heads"),
        (head_dim * n_head == n_embd, "head_dim"),
        (int(hf.get("intermediate_size", width)) == width, "intermediate_size"),
        (hf.get("hidden_act", "silu") == ("relu2" if mlp == "relu2" else "silu"), "hidden_act"),
        (float(hf.get("rms_norm_eps", RMS_EPS)) == RMS_EPS, "rms_norm_eps"),
        (plain_rope(hf), "rope_parameters"),
        (model_type == "qwen3" or attention_bias == mlp_bias, "mlp_bias"),
        (model_type != "qwen3" or not attention_bias, "attention_bias"),
        (not hf.get("use_sliding_window", False), "use_sliding_window"),
    ]
    require(checks, hf, folder, str(model_type))
    return ModelConfig(
        vocab_size=int(hf.get("vocab_size", 32000)),
        block_size=int(hf.get("max_position_embeddings", 2048)),
        n_layer=int(hf.get("num_hidden_layers", 32)),
        n_head=n_head,
        n_embd=n_embd,
        dropout=float(hf.get("attention_dropout", 0.0)),
        bias=attention_bias,
        tie_embeddings=bool(hf.get("tie_word_embeddings", False)),
        pos="rope",
        rope_base=rope_theta(hf),
        norm="rmsnorm",
        qk_norm=model_type == "qwen3",
        mlp=mlp,
    )


def from_llama_tensors(tensors: Tensors, config: ModelConfig, folder: str) -> Tensors:
    """Llama-family weights -> minigpt weights in float32."""
    top = {v: k for k, v in TOP_NAMES.items()}
    block = {v: k for k, v in BLOCK_NAMES.items()}
    out: Tensors = {}
    fused: dict[str, dict[str, torch.Tensor]] = {}  # minigpt name -> {part: tensor}
    for name, tensor in tensors.items():
        tensor = tensor.to(torch.float32)
        match = HF_BLOCK.fullmatch(name)
        if match is None:
            out[top.get(name, name)] = tensor
            continue
        prefix, rest = f"transformer.h.{match[1]}.", match[2]
        kind = rest.rsplit(".", 1)[-1]
        parts = re.fullmatch(r"(self_attn\.[qkv]|mlp\.gate|mlp\.up)_proj\.(weight|bias)", rest)
        if parts is None:
            out[prefix + block.get(rest, rest)] = tensor
        elif parts[1].startswith("self_attn"):
            fused.setdefault(f"{prefix}attn.c_attn.{kind}", {})[parts[1][-1]] = tensor
        elif config.mlp == "swiglu":
            fused.setdefault(f"{prefix}mlp.c_fc.{kind}", {})[parts[1][4:]] = tensor
        else:
            out[f"{prefix}mlp.c_fc.{kind}"] = tensor  # up_proj (a stray gate stays unexpected)
    order = {"q": 0, "k": 1, "v": 2, "gate": 0, "up": 1}
    for name, parts in fused.items():
        out[name] = torch.cat([parts[k] for k in sorted(parts, key=order.get)], dim=0)
    if config.tie_embeddings:
        out.pop("lm_head.weight", None)
    return check_weights({k: v.contiguous() for k, v in out.items()}, config, folder)


_COMMON = dict(
    config=llama_config,
    to_hf=to_llama_tensors,
    model_config=config_from_llama,
    from_hf=from_llama_tensors,
)
LLAMA = HFArchitecture(
    name="Llama",
    model_type="llama",
    fixed={**ROTARY, "mlp": "swiglu"},
    free=frozenset({"bias", "tie_embeddings", "rope_base"}),
    **_COMMON,
)
QWEN3 = HFArchitecture(
    name="Qwen3",
    model_type="qwen3",
    fixed={**ROTARY, "mlp": "swiglu", "qk_norm": True, "bias": False},
    free=frozenset({"tie_embeddings", "rope_base"}),
    **_COMMON,
)
ARCEE = HFArchitecture(
    name="Arcee",
    model_type="arcee",
    fixed={**ROTARY, "mlp": "relu2"},
    free=frozenset({"bias", "tie_embeddings", "rope_base"}),
    **_COMMON,
)
