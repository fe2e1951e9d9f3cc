"""Why fp16 with the gradient scaler misses fp32's loss: the diagnosis ``gpu_check.py`` runs
when its fp16 parity row fails (and always under ``--diagnose-fp16``).

On a lent H200 the parity model reached a last-10 loss 16% above fp32's in fp16 + scaler while
bf16 tracked fp32 and the first step agreed; on a CPU fp16 autocast tracks fp32, so the cause is
on the CUDA path. One short run must be able to name it, so this measures, on the parity model:

1. the first step's gradients in fp16 + scaler against fp32, per parameter kind: the relative
   error and the share of elements that are zero in fp16 but not in fp32 (underflow);
2. the largest activation magnitude per layer in the fp16 forward (overflow risk: fp16's
   largest value is 65504), through forward hooks;
3. the fp16 run again with one factor changed at a time (AdamW foreach instead of fused, scaler
   initial scale 2**10 instead of 2**16, no gradient clipping, no scaler), each compared with
   fp32 as the parity row is; two controls (fp32 again, fp16 unchanged again) say how much of a
   change is run-to-run noise. The factor whose run closes the gap is the cause.

Every result is a table row marked ``info``: the parity row above it is the check that fails.
(Importing torch at the top keeps this module out of ``gpu_check``'s bootstrap: it is imported
once minigpt's requirements are there.)
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

FP16_MAX = 65504.0
KINDS = ("embeddings", "attention qkv", "attention proj", "MLP", "norms", "head")
MAX_HALVINGS = 32  # the scaler's 2**16 halved this often reaches 2**-16


Info = tuple[str, str]  # a row of gpu_check's table: (check, result), marked "info" there


# -- 1. first-step gradients ----------------------------------------------------------------------


def param_kind(name: str) -> str:
    """The kind of a GPT parameter by its name (a tied output head is the token embedding)."""
    if ".wte." in f".{name}" or ".wpe." in f".{name}":
        return "embeddings"
    if "norm" in name or ".ln_" in f".{name}":
        return "norms"
    if ".attn.c_attn." in name:
        return "attention qkv"
    if ".attn.c_proj." in name:
        return "attention proj"
    if ".mlp." in name:
        return "MLP"
    if name.startswith("lm_head."):
        return "head"
    return "other"


@dataclass
class GradStats:
    """fp16's gradients of one kind against fp32's: ``||g16 - g32|| / ||g32||`` and the
    elements that are zero in fp16 but not in fp32."""

    rel_error: float
    underflow: int
    elements: int

    @property
    def underflow_share(self) -> float:
        return self.underflow / self.elements if self.elements else 0.0


def grad_stats(ref: dict[str, torch.Tensor], test: dict[str, torch.Tensor]) -> dict[str, GradStats]:
    """Per parameter kind, ``test``'s gradients (fp16) against ``ref``'s (fp32)."""
    sums: dict[str, list[float]] = {}
    for name, g32 in ref.items():
        g32, g16 = g32.double(), test[name].double()
        acc = sums.setdefault(param_kind(name), [0.0, 0.0, 0, 0])
        acc[0] += float((g16 - g32).square().sum())
        acc[1] += float(g32.square().sum())
        acc[2] += int(((g16 == 0) & (g32 != 0)).sum())
        acc[3] += g32.numel()
    return {
        kind: GradStats(math.sqrt(d / r) if r else math.sqrt(d), int(u), int(n))
        for kind, (d, r, u, n) in sums.items()
    }


def first_step_grads(
    model: nn.Module,
    forward: Callable[[], torch.Tensor],
    scale: float,
) -> tuple[dict[str, torch.Tensor], float]:
    """The unscaled gradients of one loss, and the scale they were taken at.

    As the scaler does after an overflow, the scale is halved until every gradient is finite:
    the gradients compared are those of the first step the scaler would apply.
    """
    for _ in range(MAX_HALVINGS):
        model.zero_grad(set_to_none=True)
        (forward().float() * scale).backward()
        params = [(n, p) for n, p in model.named_parameters() if p.grad is not None]
        grads = {n: p.grad.detach().float() / scale for n, p in params}
        if all(bool(torch.isfinite(g).all()) for g in grads.values()):
            break
        scale /= 2
    model.zero_grad(set_to_none=True)
    return grads, scale


def grad_rows(stats: dict[str, GradStats], scale: float) -> list[Info]:
    rows = []
    for kind in [k for k in (*KINDS, "other") if k in stats]:
        s = stats[kind]
        tied = " (and the tied head)" if kind == "embeddings" and "head" not in stats else ""
        rows.append(
            (
                f"fp16 diagnosis: first-step grads, {kind}{tied}",
                f"rel. error vs fp32 {s.rel_error:.2e}; zero in fp16 only (underflow) "
                f"{s.underflow_share:.3%} ({s.underflow:,} of {s.elements:,}); "
                f"scale 2**{math.log2(scale):g}",
            )
        )
    return rows


# -- 2. activations -------------------------------------------------------------------------------


def layer_of(name: str) -> tuple[str, str]:
    """A module's layer and its name within it: ``("h3", "mlp.c_fc")`` for
    ``transformer.h.3.mlp.c_fc``, ``("ln_f", "")`` for ``transformer.ln_f``."""
    parts = name.removeprefix("transformer.").split(".")
    if parts[0] == "h" and len(parts) > 1:
        return f"h{parts[1]}", ".".join(parts[2:])
    return parts[0], ".".join(parts[1:])


@dataclass
class Peak:
    """The largest ``|x|`` a layer output, the module (within the layer) and its dtype."""

    value: float
    module: str
    fp16: bool


def activation_maxima(model: nn.Module, forward: Callable[[], Any]) -> dict[str, Peak]:
    """Per layer, the largest ``|x|`` its modules output in ``forward()``.

    Only fp16 outputs can overflow, so within a layer they come first; a layer with none (an
    embedding, a norm autocast keeps in fp32) shows its largest fp32 output. NaN counts as
    infinite.
    """
    found: dict[str, Peak] = {}

    def hook(name: str) -> Callable[..., None]:
        layer, local = layer_of(name)

        def record(module: nn.Module, inputs: Any, output: Any) -> None:
            for t in output if isinstance(output, tuple) else (output,):
                if isinstance(t, torch.Tensor) and t.is_floating_point() and t.numel():
                    value = float(t.detach().abs().amax())
                    new = Peak(
                        math.inf if math.isnan(value) else value, local, t.dtype == torch.float16
                    )
                    old = found.get(layer, new)
                    found[layer] = max(old, new, key=lambda p: (p.fp16, p.value))

        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules() if n]
    try:
        forward()
    finally:
        for handle in handles:
            handle.remove()
    return found


def activation_row(peaks: dict[str, Peak]) -> Info:
    parts = [
        f"{layer} {p.value:.3g}{f' ({p.module})' if p.module else ''}{'' if p.fp16 else ' fp32'}"
        for layer, p in peaks.items()
    ]
    top = max((p.value for p in peaks.values() if p.fp16), default=0.0)
    return (
        "fp16 diagnosis: largest activation magnitude per layer (forward hooks)",
        f"{', '.join(parts)}; largest fp16 output {top:.3g} = {top / FP16_MAX:.2%} of fp16's "
        "max 65504",
    )


# -- 3. one factor at a time ----------------------------------------------------------------------


@dataclass
class Comparison:
    """A run's last-``tail`` mean loss against fp32's after as many applied updates."""

    mean: float
    ref: float
    change: float
    tail: int
    applied: int
    skipped: int
    apart_from: int | None  # the first step more than the tolerance apart, if any


def compare(ref: list[float], curve: list[float], skipped: int, tolerance: float) -> Comparison:
    """``curve`` (with ``skipped`` updates dropped by the scaler) against fp32's ``ref``."""
    steps = len(curve)
    tail = max(1, min(10, steps // 2))
    applied = max(tail, steps - skipped)
    ref_mean = statistics.mean(ref[applied - tail : applied])
    mean = statistics.mean(curve[-tail:])
    apart = [
        i for i, (a, b) in enumerate(zip(curve, ref, strict=True)) if abs(a / b - 1) > tolerance
    ]
    return Comparison(
        mean,
        ref_mean,
        mean / ref_mean - 1,
        tail,
        steps - skipped,
        skipped,
        apart[0] if apart else None,
    )


def train_curve(trainer: Any, steps: int) -> tuple[list[float], int]:
    """The losses of ``steps`` train steps and how many updates the fp16 scaler skipped.

    The scaler skips the update of a step whose gradients overflowed and halves its scale, so
    a drop of the scale is a skipped step.
    """
    curve, skipped = [], 0
    for _ in range(steps):
        scale = trainer.scaler.get_scale() if trainer.scaler.is_enabled() else None
        curve.append(trainer.train_step())
        skipped += scale is not None and trainer.scaler.get_scale() < scale
    return curve, skipped


def use_foreach_adamw(trainer: Any) -> None:
    """AdamW with the multi-tensor (foreach) kernels instead of the fused one, before step 0."""
    old = trainer.optimizer
    keep = ("params", "weight_decay", "lr_scale")  # not the group's own fused/foreach flags
    groups = [{k: v for k, v in g.items() if k in keep} for g in old.param_groups]
    defaults = {k: old.defaults[k] for k in ("lr", "betas", "eps", "weight_decay")}
    trainer.optimizer = torch.optim.AdamW(groups, **defaults, fused=False, foreach=True)


def scaler_with(**kwargs: Any) -> Callable[[Any], None]:
    """A tweak giving the trainer a fresh gradient scaler made with ``kwargs``."""

    def tweak(trainer: Any) -> None:
        trainer.scaler = torch.amp.GradScaler(trainer.device.type, **kwargs)

    return tweak


@dataclass(frozen=True)
class Variant:
    name: str
    dtype: str = "float16"
    overrides: dict = field(default_factory=dict)
    tweak: Callable[[Any], None] | None = None


VARIANTS = (
    Variant("control: fp32 again", dtype="float32"),
    Variant("control: fp16 unchanged again"),
    Variant("AdamW foreach, not fused", tweak=use_foreach_adamw),
    Variant("scaler initial scale 2**10", tweak=scaler_with(init_scale=2.0**10)),
    Variant("no gradient clipping", overrides={"grad_clip": 0.0}),
    Variant("no scaler (plain fp16)", tweak=scaler_with(enabled=False)),
)


def ran_with(trainer: Any, init_scale: float | None) -> str:
    """What a run actually used, read back from its trainer (so a tweak that did not take shows)."""
    opt = trainer.optimizer.defaults
    kernel = "fused" if opt.get("fused") else "foreach" if opt.get("foreach") else "default"
    scaler = f"scaler init 2**{math.log2(init_scale):g}" if init_scale else "scaler off"
    dtype = str(trainer.dtype).removeprefix("torch.")
    return f"{dtype}, AdamW {kernel}, {scaler}, clip {trainer.cfg.grad_clip:g}"


def verdict(results: dict[str, Comparison], tolerance: float) -> str:
    """Which single change closes the gap, read against the two controls."""
    fp32 = results["control: fp32 again"]
    if abs(fp32.change) > tolerance:
        return f"fp32 itself does not repeat ({fp32.change:+.2%}): no factor can be named"
    again = results["control: fp16 unchanged again"]
    if abs(again.change) <= tolerance:
        return f"fp16 unchanged came within tolerance this time ({again.change:+.2%}): noise"
    factors = {n: c for n, c in results.items() if not n.startswith("control")}
    closing = [n for n, c in factors.items() if abs(c.change) <= tolerance]
    if closing:
        return f"the gap closes with: {'; '.join(closing)} (unchanged fp16 {again.change:+.2%})"
    best = min(factors, key=lambda n: abs(factors[n].change))
    return f"no single factor closes the gap; nearest: {best} ({factors[best].change:+.2%})"


def variant_rows(
    make_trainer: Callable[..., Any], ref: list[float], steps: int, tolerance: float
) -> list[Info]:
    rows, results = [], {}
    for variant in VARIANTS:
        trainer = make_trainer(variant.name, variant.dtype, **variant.overrides)
        if variant.tweak:
            variant.tweak(trainer)
        init = trainer.scaler.get_scale() if trainer.scaler.is_enabled() else None
        curve, skipped = train_curve(trainer, steps)
        c = results[variant.name] = compare(ref, curve, skipped, tolerance)
        apart = "never" if c.apart_from is None else f"from step {c.apart_from}"
        rows.append(
            (
                f"fp16 diagnosis: {variant.name}",
                f"last-{c.tail} mean {c.mean:.5f} vs fp32 {c.ref:.5f} ({c.change:+.3%}) after "
                f"{c.applied} updates ({c.skipped} skipped); >{tolerance:.0%} apart {apart}; "
                f"ran with {ran_with(trainer, init)}",
            )
        )
    rows.append(("fp16 diagnosis: verdict", verdict(results, tolerance)))
    return rows


def diagnose(
    make_trainer: Callable[..., Any], ref: list[float], steps: int, tolerance: float
) -> list[Info]:
    """All three parts; ``make_trainer(label, dtype, **overrides)`` builds a fresh parity run
    and ``ref`` is the parity check's fp32 loss curve."""
    from minigpt.training.sft import model_inputs

    grads = {}
    for dtype in ("float32", "float16"):
        trainer = make_trainer(f"grads {dtype}", dtype)
        args, kwargs = model_inputs(trainer.batches.train(0, 0))

        def loss(t: Any = trainer, a: tuple = args, k: dict = kwargs) -> torch.Tensor:
            with t.autocast():
                return t.model(*a, **k)[1]

        scale = trainer.scaler.get_scale() if trainer.scaler.is_enabled() else 1.0
        grads[dtype], scale = first_step_grads(trainer.model, loss, scale)
        if dtype == "float16":
            with torch.no_grad():
                maxima = activation_maxima(trainer.model, loss)
    rows = grad_rows(grad_stats(grads["float32"], grads["float16"]), scale)
    rows.append(activation_row(maxima))
    return rows + variant_rows(make_trainer, ref, steps, tolerance)
