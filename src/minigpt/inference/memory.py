"""What generating and evaluating add to the RAM of a loaded model, checked before they start.

The weights are already in memory when these run (the available RAM the check reads has them
counted), so the estimates cover what comes on top, with a CPU model (``hostmem.require_ram``
is only asked on the CPU; a GPU's own memory is another matter):

* generation: the KV cache (keys and values of ``block_size`` positions per layer and
  sample, allocated whole on the first step), the largest forward pass (the prompt's prefill,
  or a whole block per step without the cache), the last position's logits with the sampling
  temporaries, and what grows with ``max_new_tokens``: every sample's token ids (int64, copied
  once per step by ``torch.cat``) and its text;
* evaluation: one batch of windows: the logits over the whole window, their fp32 copy and the
  log-softmax inside the cross-entropy, and the largest block's transients;
* serving: the slot KV cache, ``max_batch`` sequences of ``block_size`` positions.

The forward pass's transients are counted per the widest block moment (residual, LayerNorm
output, q/k/v and their head-major copies, attention output, the MLP's hidden activations and
their activation function's output), all of which can be alive at once. Tests measure the
generation and evaluation estimates against the peak resident memory of real runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from minigpt.config import ModelConfig, swiglu_hidden
from minigpt.config.sampling import SampleConfig
from minigpt.hostmem import check_disabled, largest_fitting, require_ram, usable_ram

TEXT_BYTES_PER_TOKEN = 16  # the decoded text a caller keeps, with one copy while it grows


def _hidden(model: ModelConfig) -> int:
    """The MLP's hidden activations per token: 4d, or SwiGLU's gate and up projections."""
    return 2 * swiglu_hidden(model.n_embd) if model.mlp == "swiglu" else 4 * model.n_embd


def forward_bytes(model: ModelConfig, batch: int, tokens: int, elt: int = 4) -> int:
    """Transients of one no-grad forward pass of ``batch`` x ``tokens`` (without the logits)."""
    d = model.n_embd
    per_token = 9 * d + 2 * _hidden(model)  # x, ln, qkv (3d) + q k v copies (3d), y, 2 MLP
    return batch * tokens * per_token * elt


def kv_cache_bytes(model: ModelConfig, batch: int, elt: int = 4) -> int:
    """Keys and values of ``block_size`` positions per layer for ``batch`` sequences."""
    return 2 * model.n_layer * batch * model.block_size * model.n_embd * elt


def generation_bytes(
    model: ModelConfig,
    batch: int,
    prompt: int,
    new_tokens: int,
    use_cache: bool = True,
    elt: int = 4,
) -> int:
    """RAM that generating ``new_tokens`` for ``batch`` samples of a ``prompt``-token prompt
    adds to the loaded model (see the module's docstring)."""
    # with the cache the prompt is run once (prefill); without, each step re-runs the context
    window = min(max(prompt, 1) + (0 if use_cache else new_tokens), model.block_size)
    cache = kv_cache_bytes(model, batch, elt) if use_cache else 0
    # last position's logits (elt) and sampling: fp32 probabilities, sorted values and indices
    sampling = batch * model.vocab_size * (elt + 4 + 4 + 8)
    ids = 2 * batch * (prompt + new_tokens) * 8  # the growing (B, T) int64 tensor, copied
    text = batch * new_tokens * TEXT_BYTES_PER_TOKEN
    return cache + forward_bytes(model, batch, window, elt) + sampling + ids + text


def eval_bytes(model: ModelConfig, batch: int, mixed: bool = False) -> int:
    """RAM of one evaluation batch of ``batch`` full windows (see the module's docstring)."""
    elt = 2 if mixed else 4
    rows = batch * (model.block_size + 1)
    logits = rows * model.vocab_size * (elt + (4 if mixed else 0) + 4)  # + fp32 copy, log-softmax
    return 2 * rows * 8 + forward_bytes(model, batch, model.block_size, elt) + logits


def slot_bytes(model: ModelConfig, slots: int, elt: int = 4) -> int:
    """RAM of a server's slot KV cache: ``slots`` sequences, one prompt's prefill at a time,
    a row of logits per slot."""
    sampling = slots * model.vocab_size * (elt + 4 + 4 + 8)
    return kv_cache_bytes(model, slots, elt) + forward_bytes(model, 1, model.block_size) + sampling


def check_fits(
    bytes_of: Callable[..., int], what: str, knobs: dict[str, str], otherwise: str, **args: Any
) -> None:
    """Refuse, in one line, a CPU job of ``bytes_of(**args)`` bytes that would not fit in RAM.

    The one check behind generation, evaluation and serving: for each knob (an argument of
    ``bytes_of`` -> its flag, e.g. ``{"batch": "--num-samples"}``) it suggests the largest
    value below the asked one that fits, the other arguments unchanged; ``otherwise`` when no
    knob helps. Estimating first and searching only on a refusal keeps the common case cheap.
    """
    if check_disabled():
        return
    need, budget = bytes_of(**args), usable_ram()
    if need <= budget:
        return
    fixes = []
    for name, flag in knobs.items():
        best = largest_fitting(
            lambda n, name=name: bytes_of(**{**args, name: n}) <= budget,
            limit=max(1, args[name] - 1),
        )
        if best:
            fixes.append(f"{flag} {best}")
    require_ram(need, what, "try " + " or ".join(fixes) if fixes else otherwise)


def check_generation(
    model: ModelConfig, config: SampleConfig, batch: int, prompt: int, elt: int = 4
) -> None:
    """Refuse a CPU generation of ``batch`` samples of a ``prompt``-token prompt with
    ``config`` that would not fit in RAM, naming the token and sample counts that fit."""
    check_fits(
        generation_bytes,
        f"generating {config.max_new_tokens:,} tokens for {batch} sample(s)",
        {"new_tokens": "--max-new-tokens", "batch": "--num-samples"},
        "use a smaller model or fewer samples",
        model=model,
        batch=batch,
        prompt=prompt,
        new_tokens=config.max_new_tokens,
        use_cache=config.use_cache,
        elt=elt,
    )


def check_eval(model: ModelConfig, batch: int, mixed: bool = False) -> None:
    """Refuse a CPU evaluation whose batch of windows would not fit in RAM."""
    what = f"evaluating batches of {batch} x {model.block_size:,} tokens"
    check_fits(
        eval_bytes,
        what,
        {"batch": "--batch-size"},
        "use a smaller model",
        model=model,
        batch=batch,
        mixed=mixed,
    )


def check_slots(model: ModelConfig, slots: int, elt: int = 4) -> None:
    """Refuse a server whose KV cache (``slots`` sequences) would not fit in RAM."""
    check_fits(
        slot_bytes,
        f"a KV cache of {slots} slots",
        {"slots": "--max-batch"},
        "use a smaller model",
        model=model,
        slots=slots,
        elt=elt,
    )


def element_size(model: torch.nn.Module) -> int:
    """Bytes per element of the model's activations: its floating-point weights' (4 if none)."""
    for p in model.parameters():
        if p.is_floating_point():
            return p.element_size()
    return 4
