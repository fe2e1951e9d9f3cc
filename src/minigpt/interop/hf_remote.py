"""minigpt's GPT as transformers remote code, for option combinations no transformers class
computes exactly (e.g. ReLU² with QK-norm and soft-capped logits: the ``cpu-fast`` recipe).

The folder gets ``configuration_minigpt.py`` and ``modeling_minigpt.py`` (package data in
``interop/remote/``, self-contained: torch and transformers only) and a ``config.json`` whose
``auto_map`` points at them, so ``AutoModelForCausalLM.from_pretrained(DIR,
trust_remote_code=True)`` loads it offline. The model there is minigpt's GPT with the same
parameter names, so the weights are written as they are.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from minigpt.config import ModelConfig
from minigpt.interop.hf_base import HFArchitecture, Tensors, as_float32, check_weights, require

REMOTE_FILES = ("configuration_minigpt.py", "modeling_minigpt.py")
# ModelConfig fields the remote model implements (everything that changes the function).
IMPLEMENTED = frozenset(
    {"bias", "tie_embeddings", "pos", "rope_base", "norm", "qk_norm", "mlp", "logit_softcap"}
)
CHOICES = {"pos": ("learned", "rope"), "norm": ("layernorm", "rmsnorm"),
           "mlp": ("gelu", "gelu_exact", "relu2", "swiglu")}  # fmt: skip


def remote_code_files() -> dict[str, str]:
    """The remote-code files, by name, as text."""
    package = resources.files("minigpt.interop.remote")
    return {name: package.joinpath(name).read_text(encoding="utf-8") for name in REMOTE_FILES}


def remote_config(config: ModelConfig) -> dict[str, Any]:
    fields = {name: getattr(config, name) for name in sorted(IMPLEMENTED)}
    return {
        "architectures": ["MiniGPTForCausalLM"],
        "model_type": "minigpt",
        "auto_map": {
            "AutoConfig": "configuration_minigpt.MiniGPTConfig",
            "AutoModelForCausalLM": "modeling_minigpt.MiniGPTForCausalLM",
        },
        "vocab_size": config.vocab_size,
        "block_size": config.block_size,
        "n_layer": config.n_layer,
        "n_head": config.n_head,
        "n_embd": config.n_embd,
        "dropout": config.dropout,
        **fields,
        "tie_word_embeddings": config.tie_embeddings,
        "use_cache": True,
    }


def to_remote_tensors(state: Tensors, config: ModelConfig) -> Tensors:
    """The same weights under the same names; a tied head is stored once, as ``wte``."""
    skip = "lm_head.weight" if config.tie_embeddings else None
    return {k: v.contiguous() for k, v in state.items() if k != skip}


def config_from_remote(hf: dict[str, Any], folder: str) -> ModelConfig:
    checks = [(hf.get(key, options[0]) in options, key) for key, options in CHOICES.items()]
    require(checks, hf, folder, "minigpt remote-code")
    defaults = ModelConfig()
    values = {name: hf.get(name, getattr(defaults, name)) for name in IMPLEMENTED}
    return ModelConfig(
        vocab_size=int(hf["vocab_size"]),
        block_size=int(hf["block_size"]),
        n_layer=int(hf["n_layer"]),
        n_head=int(hf["n_head"]),
        n_embd=int(hf["n_embd"]),
        dropout=float(hf.get("dropout", 0.0)),
        **values,
    )


def from_remote_tensors(tensors: Tensors, config: ModelConfig, folder: str) -> Tensors:
    out = as_float32(tensors)
    if config.tie_embeddings:
        out.pop("lm_head.weight", None)
    if "transformer.wpe.weight" in out:  # a shorter block_size keeps the first positions
        out["transformer.wpe.weight"] = out["transformer.wpe.weight"][: config.block_size].clone()
    return check_weights(out, config, folder)


REMOTE = HFArchitecture(
    name="minigpt (remote code)",
    model_type="minigpt",
    fixed={},
    free=IMPLEMENTED,
    config=remote_config,
    to_hf=to_remote_tensors,
    model_config=config_from_remote,
    from_hf=from_remote_tensors,
    remote_code=True,
)
