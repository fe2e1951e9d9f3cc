"""Where and how tensors run: the device, the compute dtype and whether to compile.

A leaf of the package (it imports nothing from minigpt but the errors), so every stage that
places a model (training, generation, evaluation, serving) resolves these the same way.
"""

from __future__ import annotations

import torch

from minigpt.errors import MiniGPTError


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks cuda, then mps, then cpu."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise MiniGPTError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise MiniGPTError("device cuda requested but no CUDA GPU is available; use --device cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise MiniGPTError("device mps requested but MPS is not available; use --device cpu")
    return device


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """``auto``: bf16 on GPUs that support it, fp16 on older CUDA GPUs, fp32 on CPU."""
    if name == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def resolve_compile(name: str, device: torch.device) -> bool:
    """``auto`` compiles on CUDA only: there it is a large speed-up, while on CPU it saved
    about 3% of step time for a minute of compiling (BENCHMARKS.md, issue 3)."""
    if name == "auto":
        return device.type == "cuda"
    return name == "true"
