"""Int8 inference on CPU: the model's linear layers with int8 weights, for faster generation.

Generating a token reads every weight once, so on a CPU decoding is bound by memory traffic
(a 124M model is 0.5 GB of fp32 weights per token); int8 weights are a quarter of the bytes.

``quantize_model(model, "int8")`` (``--quantize int8``) is weight-only: each ``nn.Linear``
becomes an ``Int8WeightLinear`` with int8 weights and one scale per output channel, and the
activations stay unrounded (bf16 into ``torch._weight_int8pack_mm``, PyTorch's own kernel,
which takes bf16 activations only). It is the closer of the two modes to fp32: on the char
model of BENCHMARKS.md its greedy text matched fp32's for all 200 tokens of three prompts, at
+0.02% val perplexity. A large output head is the exception: on GPT-2's 50257 rows that
kernel took 7 ms a token against 2.9 ms for the dynamic int8 layer, so there the head runs
``int8-dynamic``'s kernel.

``quantize_model(model, "int4")`` stores 4-bit weights in groups of ``INT4_GROUP`` input
channels, each group with its own scale and offset (min to max in 16 steps), run by PyTorch's
own ``torch._weight_int4pack_mm_for_cpu`` (the kernel gpt-fast and torchao use on CPU): half the
bytes of int8 and, on the CPU of BENCHMARKS.md, 2.8x faster per layer than the int8
weight-only kernel, for a larger change in quality (BENCHMARKS.md says how much). A layer the
kernel cannot take (inputs not whole groups, outputs not a multiple of 16) keeps int8 weights.

``quantize_model(model, "int8-dynamic")`` also quantizes the activations, per call, so the
matmul itself runs in int8 on the CPU's integer units (PyTorch's dynamically quantized linear
layers, fbgemm / x86 kernels): faster at batch 1, but the activations' 8-bit rounding is most
of its logit error, and its greedy text leaves fp32's sooner where two tokens are near-tied.

Why these kernels, measured on the 124M shape (BENCHMARKS.md, ``benchmarks/quantized_generation.py``):
torchao's int8 configs (the successor library) dequantize the whole weight on every call unless
the model is compiled, which made eager decoding 3x slower than fp32 here; the dynamic layers
come from ``torch.ao.quantization``, which PyTorch has marked for migration to torchao: if a
future torch drops them, ``--quantize`` says so in one line.

The token embedding stays fp32 (a lookup reads one row per token). The output head stays fp32
too when it holds under ``HEAD_FP32_SHARE`` of the linear weights (a character vocabulary: 1% of
a 4-layer model): its rounding lands directly on the logits, and there it costs almost nothing
to avoid (on the char model of BENCHMARKS.md the median logit error fell from 0.108 to 0.089).
At GPT-2's vocabulary the head is a third of the weights, which decoding reads every token, so
it is quantized: with tied embeddings it gets its own int8 copy of the shared matrix, and the
embedding is unchanged. Only inference: a quantized model cannot be trained, saved as a
checkpoint, or run on a GPU.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from minigpt.config.sampling import QUANTIZE_CHOICES
from minigpt.errors import MiniGPTError

HEAD_FP32_SHARE = 0.1  # the output head stays fp32 below this share of the linear weights
INT4_GROUP = 32  # input channels per int4 scale and offset


def quantize_model(model: nn.Module, mode: str = "int8") -> nn.Module:
    """``model`` (in eval mode) with its ``nn.Linear`` layers quantized in place; ``none`` is a no-op."""
    if mode in ("none", "", None):
        return model
    if mode not in QUANTIZE_CHOICES:
        raise MiniGPTError(
            f"unknown quantization {mode!r}; use one of {', '.join(QUANTIZE_CHOICES)}"
        )
    devices = {p.device.type for p in model.parameters()}
    if devices != {"cpu"}:
        raise MiniGPTError(
            f"--quantize {mode} runs on the CPU only (the model is on {', '.join(sorted(devices))}); "
            "add --device cpu"
        )
    model.float().eval()  # the int8 layers take fp32 activations
    names = linears_to_quantize(model)
    dynamic = names
    if mode in ("int8", "int4"):
        dynamic = [n for n in names if n == "lm_head"]  # a large head: the faster kernel
        for name in names:
            if name not in dynamic:
                parent, _, child = name.rpartition(".")
                owner = model.get_submodule(parent)
                setattr(owner, child, weight_only(getattr(owner, child), mode))
    if dynamic:
        _quantize_dynamic(model, dynamic, mode)
    return model


def _quantize_dynamic(model: nn.Module, names: list[str], mode: str) -> None:
    """The layers ``names`` of ``model`` become PyTorch's dynamic int8 linear layers."""
    engine = _engine()
    ao = getattr(torch, "ao", None)
    quantization = getattr(ao, "quantization", None)
    if quantization is None or not hasattr(quantization, "quantize_dynamic"):
        raise MiniGPTError(
            f"--quantize {mode} needs torch.ao.quantization, which torch {torch.__version__} "
            "does not have; run without --quantize"
        )
    torch.backends.quantized.engine = engine
    with warnings.catch_warnings():
        # torch.ao.quantization warns that it is moving to torchao; the kernels are the same.
        warnings.simplefilter("ignore")
        quantization.quantize_dynamic(
            model, dict.fromkeys(names, quantization.per_channel_dynamic_qconfig), inplace=True
        )


def linears_to_quantize(model: nn.Module) -> list[str]:
    """Names of the ``nn.Linear`` layers to quantize: all, but a small output head
    (``lm_head`` under ``HEAD_FP32_SHARE`` of the linear weights) stays fp32."""
    linears = {n: m for n, m in model.named_modules() if type(m) is nn.Linear}
    total = sum(m.weight.numel() for m in linears.values())
    head = linears.get("lm_head")
    if head is not None and head.weight.numel() < HEAD_FP32_SHARE * total:
        del linears["lm_head"]
    return list(linears)


def weight_only(linear: nn.Linear, mode: str) -> nn.Module:
    """The weight-only int8 or int4 version of ``linear``."""
    # the kernel's layout: whole groups of inputs, outputs in blocks of 16
    if mode == "int4" and linear.in_features % INT4_GROUP == 0 and linear.out_features % 16 == 0:
        return Int4WeightLinear(linear)
    return Int8WeightLinear(linear)


class WeightOnlyLinear(nn.Module):
    """A linear layer whose weight a kernel stores in fewer bits: the kernel takes bf16
    activations, the layer keeps the input's shape and dtype and adds the fp32 bias."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach().clone())

    def matmul(self, flat: torch.Tensor) -> torch.Tensor:
        """``flat`` (tokens, in_features) in bf16 times the stored weight."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.matmul(x.reshape(-1, x.size(-1)).bfloat16()).to(x.dtype)
        y = y.view(*x.shape[:-1], -1)
        return y if self.bias is None else y + self.bias


class Int8WeightLinear(WeightOnlyLinear):
    """int8 weights (one scale per output channel), run by ``torch._weight_int8pack_mm``."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__(linear)
        weight = linear.weight.detach().float()
        scale = weight.abs().amax(dim=1).clamp(min=1e-12) / 127
        self.register_buffer("weight", torch.round(weight / scale[:, None]).to(torch.int8))
        self.register_buffer("scale", scale.bfloat16())

    def matmul(self, flat: torch.Tensor) -> torch.Tensor:
        return torch._weight_int8pack_mm(flat, self.weight, self.scale)


class Int4WeightLinear(WeightOnlyLinear):
    """4-bit weights in groups of ``INT4_GROUP`` input channels, each group mapped from its min
    to its max in 16 steps (an offset and a scale, as the kernel wants them:
    ``(q - 8) * scale + offset``), run by ``torch._weight_int4pack_mm_for_cpu``."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__(linear)
        weight = linear.weight.detach().float()
        rows, cols = weight.shape
        groups = weight.view(rows, cols // INT4_GROUP, INT4_GROUP)
        low, high = groups.amin(dim=-1), groups.amax(dim=-1)
        scale = ((high - low) / 15).clamp(min=1e-12)
        q = torch.round((groups - low[..., None]) / scale[..., None]).clamp(0, 15)
        packed = torch._convert_weight_to_int4pack_for_cpu(q.view(rows, cols).int(), 1)
        offset = low + 8 * scale  # (q - 8) * scale + offset == low + q * scale
        # (groups, out_features, 2): per group and output channel, the scale and the offset
        scales = torch.stack([scale.t(), offset.t()], dim=-1).bfloat16().contiguous()
        self.register_buffer("weight", packed)
        self.register_buffer("scales_and_offsets", scales)

    def matmul(self, flat: torch.Tensor) -> torch.Tensor:
        return torch._weight_int4pack_mm_for_cpu(
            flat, self.weight, INT4_GROUP, self.scales_and_offsets
        )


def _engine() -> str:
    """The int8 kernel library for this CPU: x86 (fbgemm + oneDNN), fbgemm, or qnnpack on ARM."""
    engines = torch.backends.quantized.supported_engines
    for name in ("x86", "fbgemm", "qnnpack"):
        if name in engines:
            return name
    raise MiniGPTError(
        f"this build of torch has no int8 CPU kernels (engines: {engines}); run without --quantize"
    )


def is_quantized(model: nn.Module) -> bool:
    """Whether any layer of ``model`` holds int8 weights (from ``quantize_model``)."""
    return any(
        isinstance(m, WeightOnlyLinear) or "quantized" in type(m).__module__
        for m in model.modules()
    )
