"""What every Hugging Face architecture mapping shares: which minigpt options it expresses,
and the checks on the weights it reads back.

Each target architecture (``hf_gpt2``, ``hf_llama``, ``hf_remote``) is one ``HFArchitecture``:
the ``ModelConfig`` values it requires (``fixed``), the fields it expresses at any value
(``free``), the fields it expresses at some values only (``choices``), and four functions that translate the config and the weights both ways. Every
other field must keep its default, so a new option in ``ModelConfig`` is refused by every
exact architecture until someone maps it, instead of being silently dropped.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from minigpt.config import ModelConfig
from minigpt.errors import MiniGPTError
from minigpt.model import GPT

# The fields every architecture expresses: the network's size.
SHAPE_FIELDS = frozenset({"vocab_size", "block_size", "n_layer", "n_head", "n_embd", "dropout"})
# Fields that change training but not the function the weights compute (e.g. an
# initialisation scheme): exportable at any value. Architecture options stay out of here.
ARCHITECTURE_NEUTRAL: set[str] = {"zero_init_proj"}
# Fields that matter only while another field has a value: exportable otherwise.
ONLY_WITH: dict[str, tuple[str, Any]] = {"rope_base": ("pos", "rope")}

Tensors = dict[str, torch.Tensor]


@dataclass(frozen=True)
class HFArchitecture:
    """One transformers architecture and how minigpt's GPT maps onto it, both ways."""

    name: str  # what the user reads: "GPT-2", "Llama", ...
    model_type: str  # config.json's model_type
    fixed: dict[str, Any]  # ModelConfig values this architecture needs
    free: frozenset[str]  # ModelConfig fields it expresses at any value
    config: Callable[[ModelConfig], dict[str, Any]]  # -> config.json (without token ids)
    to_hf: Callable[[Tensors, ModelConfig], Tensors]  # minigpt weights -> its weights
    model_config: Callable[[dict[str, Any], str], ModelConfig]  # config.json -> ModelConfig
    from_hf: Callable[[Tensors, ModelConfig, str], Tensors]  # its weights -> minigpt's
    remote_code: bool = False  # needs trust_remote_code=True (files shipped in the folder)
    choices: dict[str, tuple[Any, ...]] = field(default_factory=dict)  # field: values it has

    def blockers(self, config: ModelConfig) -> list[str]:
        """``field=value`` for every option of ``config`` this architecture cannot express."""
        defaults = type(config)()  # a subclass may add options (see the tests)
        bad = []
        for f in dataclasses.fields(config):
            value = getattr(config, f.name)
            other, needed = ONLY_WITH.get(f.name, (f.name, value))
            if f.name in self.free | SHAPE_FIELDS | ARCHITECTURE_NEUTRAL:
                continue
            if f.name in self.choices:
                if value not in self.choices[f.name]:
                    bad.append(f"{f.name}={value!r}")
                continue
            if getattr(config, other) != needed:
                continue  # e.g. rope_base without rotary positions: computes nothing
            wanted = self.fixed.get(f.name, getattr(defaults, f.name))
            if value != wanted:
                bad.append(f"{f.name}={value!r}")
        return bad


def expected_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Parameter shapes of minigpt's GPT for ``config``, without allocating it (meta device)."""
    with torch.device("meta"):
        model = GPT(config)
    state = model.state_dict()
    if config.tie_embeddings:
        state.pop("lm_head.weight")
    return {k: tuple(v.shape) for k, v in state.items()}


def check_weights(out: Tensors, config: ModelConfig, folder: str) -> Tensors:
    """``out`` (minigpt names), checked to be exactly the parameters ``config``'s GPT has."""
    shapes = expected_shapes(config)
    missing = sorted(set(shapes) - set(out))
    unexpected = sorted(set(out) - set(shapes))
    wrong = [k for k in shapes if k in out and tuple(out[k].shape) != shapes[k]]
    if missing or unexpected or wrong:
        detail = (
            f"missing {missing[:3]}"
            if missing
            else f"unexpected {unexpected[:3]}"
            if unexpected
            else f"{wrong[0]} has shape {tuple(out[wrong[0]].shape)}, not {shapes[wrong[0]]}"
        )
        raise MiniGPTError(f"the weights in {folder} do not fit its config.json ({detail})")
    return out


def require(checks: list[tuple[bool, str]], hf: dict[str, Any], folder: str, what: str) -> None:
    """One line naming every config.json key whose value minigpt's GPT does not compute."""
    bad = [f"{key}={hf.get(key)!r}" for ok, key in checks if not ok]
    if bad:
        raise MiniGPTError(
            f"{folder} uses a {what} variant minigpt's model does not compute: {', '.join(bad)}"
        )


def rope_theta(hf: dict[str, Any]) -> float:
    """The rotary base of a config.json (transformers 5's rope_parameters, or 4's rope_theta)."""
    params = hf.get("rope_parameters") or {}
    return float(params.get("rope_theta", hf.get("rope_theta", 10000.0)))


def plain_rope(hf: dict[str, Any]) -> bool:
    """True when a config.json asks for unscaled rotary embeddings, the only kind minigpt has."""
    params = hf.get("rope_parameters") or {}
    kind = params.get("rope_type", params.get("type", "default"))
    return kind == "default" and not hf.get("rope_scaling")


def as_float32(tensors: Tensors) -> Tensors:
    return {k: v.to(torch.float32).contiguous() for k, v in tensors.items()}
