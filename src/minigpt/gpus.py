"""GPUs as numbers: usable memory and peak TFLOPS, by name or from the vendors' data sheets.

Kept apart from ``runtime`` (which imports torch to ask the live device) so that what needs
only the table -- ``minigpt plan --help`` listing the GPUs it knows, the planner's estimates --
reads it without importing torch, which takes seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

from minigpt.hostmem import GiB

CUDA_CONTEXT = int(0.5 * GiB)  # driver, cuBLAS and kernels: outside max_memory_allocated


@dataclass(frozen=True)
class GPU:
    """A device to plan for: usable memory and dense peak TFLOPS (0: unknown)."""

    name: str
    memory: int  # bytes the driver lets a process use
    mixed_tflops: float  # bf16 (fp16 where bf16 is missing) tensor cores, fp32 accumulate
    fp32_tflops: float  # fp32 matmuls as the trainer runs them (TF32 where the GPU has it)
    bf16: bool | None = True  # None: unknown (a GPU given only by its memory size)
    context: int = CUDA_CONTEXT  # memory the process needs outside the tensors


# Dense (no sparsity) peak TFLOPS from the vendors' data sheets, for what the trainer runs:
# (bf16 -- fp16 where bf16 is missing -- tensor cores with fp32 accumulation, fp32 matmuls,
# which train.py runs as TF32 on GPUs that have it). The one table for the planner's estimates
# and the trainer's MFU. Keys match torch.cuda.get_device_name() as substrings, first match
# wins: "H100 PCIe" precedes "H100", "A100" precedes "A10G" and "A10", "L40S" precedes "L4".
PEAK_TFLOPS: dict[str, tuple[float, float]] = {
    "H200": (989.0, 494.0),
    "H100 PCIe": (756.0, 378.0),
    "H100": (989.0, 494.0),
    "A100": (312.0, 156.0),
    "A10G": (70.0, 35.0),
    "A10": (125.0, 62.5),
    "L40S": (362.0, 183.0),
    "L4": (121.0, 60.0),
    "RTX 4090": (165.2, 82.6),
    "RTX 3090": (71.0, 35.6),
    "V100": (125.0, 15.7),
    "T4": (65.0, 8.1),
}


def peak_tflops(device_name: str) -> tuple[float, float]:
    """(mixed, fp32) peak TFLOPS of a GPU by name; (0, 0) for one not in the table."""
    for key, peaks in PEAK_TFLOPS.items():
        if key in device_name:
            return peaks
    return 0.0, 0.0


DEFAULT_MFU = 0.4  # the model FLOPs utilisation `minigpt plan` assumes (--mfu)


def _gpu(name: str, mib: int, bf16: bool = True) -> GPU:
    return GPU(name, mib * 1024**2, *peak_tflops(name), bf16)


# The GPUs `minigpt plan --gpu` knows by name; memory as nvidia-smi reports it.
GPUS: dict[str, GPU] = {
    "T4": _gpu("NVIDIA T4 16 GB", 15360, bf16=False),
    "L4": _gpu("NVIDIA L4 24 GB", 23034),
    "A10": _gpu("NVIDIA A10 24 GB", 23028),
    "A100-40": _gpu("NVIDIA A100 40 GB", 40960),
    "A100-80": _gpu("NVIDIA A100 80 GB", 81920),
    "H100": _gpu("NVIDIA H100 SXM 80 GB", 81559),
    "RTX3090": _gpu("NVIDIA RTX 3090 24 GB", 24576),
    "RTX4090": _gpu("NVIDIA RTX 4090 24 GB", 24564),
}
