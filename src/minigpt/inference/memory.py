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

import torch

from minigpt.config import ModelConfig, swiglu_hidden
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


def check_generation(
    model: ModelConfig,
    batch: int,
    prompt: int,
    new_tokens: int,
    use_cache: bool = True,
    elt: int = 4,
) -> None:
    """Refuse (one line, with the largest sample count and token count that fit) a CPU
    generation that would not fit in RAM."""
    if check_disabled():
        return
    need = generation_bytes(model, batch, prompt, new_tokens, use_cache, elt)
    budget = usable_ram()
    if need <= budget:
        return
    fixes = []
    tokens = largest_fitting(
        lambda n: generation_bytes(model, batch, prompt, n, use_cache, elt) <= budget,
        limit=max(1, new_tokens - 1),
    )
    if tokens:
        fixes.append(f"--max-new-tokens {tokens}")
    samples = largest_fitting(
        lambda b: generation_bytes(model, b, prompt, new_tokens, use_cache, elt) <= budget,
        limit=max(1, batch - 1),
    )
    if samples:
        fixes.append(f"--num-samples {samples}")
    fix = "try " + " or ".join(fixes) if fixes else "use a smaller model or fewer samples"
    what = f"generating {new_tokens:,} tokens for {batch} sample(s)"
    require_ram(need, what, fix)


def check_eval(model: ModelConfig, batch: int, mixed: bool = False) -> None:
    """Refuse a CPU evaluation whose batch of windows would not fit in RAM."""
    if check_disabled():
        return
    need = eval_bytes(model, batch, mixed)
    budget = usable_ram()
    if need <= budget:
        return
    fits = largest_fitting(lambda b: eval_bytes(model, b, mixed) <= budget, limit=max(1, batch - 1))
    fix = f"try --batch-size {fits}" if fits else "use a smaller model"
    what = f"evaluating batches of {batch} x {model.block_size:,} tokens"
    require_ram(need, what, fix)


def check_slots(model: ModelConfig, slots: int, elt: int = 4) -> None:
    """Refuse a server whose KV cache (``slots`` sequences) would not fit in RAM."""
    if check_disabled():
        return

    def slots_bytes(n: int) -> int:  # one prompt's prefill at a time, n rows of logits
        sampling = n * model.vocab_size * (elt + 4 + 4 + 8)
        return kv_cache_bytes(model, n, elt) + forward_bytes(model, 1, model.block_size) + sampling

    need = slots_bytes(slots)
    budget = usable_ram()
    if need <= budget:
        return
    fits = largest_fitting(lambda n: slots_bytes(n) <= budget, limit=max(1, slots - 1))
    fix = f"try --max-batch {fits}" if fits else "use a smaller model"
    require_ram(need, f"a KV cache of {slots} slots", fix)


def element_size(model: torch.nn.Module) -> int:
    """Bytes per element of the model's activations: its floating-point weights' (4 if none)."""
    for p in model.parameters():
        if p.is_floating_point():
            return p.element_size()
    return 4
