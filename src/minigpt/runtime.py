"""Where and how tensors run: the device, the compute dtype, whether to compile, and what the
device offers (its memory, its peak FLOPs) and how it reports running out of memory.

A leaf of the package (it imports nothing from minigpt but the errors, gpus and hostmem), so every
stage that places a model (training, generation, evaluation, serving) resolves these the same
way, and the planner's estimates and the trainer's MFU read one table of GPU peaks.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass

import torch

from minigpt.errors import MiniGPTError
from minigpt.gpus import GPU, peak_tflops
from minigpt.hostmem import GiB, available_ram, gib, size, usable_ram  # noqa: F401 (gib)


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


# What compiling a training step costs and saves on a CPU (Inductor's C++ backend), measured at
# the classic 4x4x128 shape on a loaded 2-core machine (BENCHMARKS.md, issue 17): the first
# compile of a shape took 30-55 s (over 2 minutes for larger models in issue 3), and the
# compiled step used ~5% less CPU time than the eager one. With the persistent cache
# (``compile_cache_dir``) later runs of the same shape load most of the work instead.
CPU_COMPILE_SECONDS = 60.0
CPU_COMPILE_SAVING = 0.05
# fp32 training FLOP/s assumed for a CPU when estimating how long a run will take eagerly.
CPU_TRAIN_FLOPS = 60e9


@dataclass(frozen=True)
class CompileChoice:
    """Whether to ``torch.compile`` the model, and why (for the run's first log line)."""

    enabled: bool
    reason: str


def choose_compile(
    name: str, device: torch.device, run_flops: float | None = None
) -> CompileChoice:
    """``true``/``false`` as given; ``auto`` compiles on CUDA, and on a CPU when the run is long
    enough to repay compiling: its estimated eager time (``run_flops`` at ``CPU_TRAIN_FLOPS``)
    times the saving must exceed the compile time. The choice depends on the config only, so a
    resumed run makes the same one (and computes bit for bit as the run it continues)."""
    if name != "auto":
        return CompileChoice(name == "true", f"compile {name}")
    if device.type == "cuda":
        return CompileChoice(True, "compile auto: on for CUDA")
    if device.type != "cpu" or not run_flops:
        return CompileChoice(False, f"compile auto: off on {device.type}")
    eager = run_flops / CPU_TRAIN_FLOPS
    saved = eager * CPU_COMPILE_SAVING
    pays = saved > CPU_COMPILE_SECONDS
    verdict = "on" if pays else "off"
    return CompileChoice(
        pays,
        f"compile auto: {verdict} (~{eager / 60:.0f} min eager on this CPU, compiling saves "
        f"~{saved:.0f} s for ~{CPU_COMPILE_SECONDS:.0f} s the first time)",
    )


def compile_cache_dir() -> str:
    """Inductor's cache of compiled kernels and graphs, kept across runs and reboots: a shape
    compiled once on this machine is loaded, not compiled, the next time. ``TORCHINDUCTOR_CACHE_DIR``
    wins where set; by default ``~/.cache/minigpt/inductor`` (torch's own default lives in /tmp)."""
    if "TORCHINDUCTOR_CACHE_DIR" not in os.environ:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = os.path.join(base, "minigpt", "inductor")
    return os.environ["TORCHINDUCTOR_CACHE_DIR"]


def physical_cores() -> int:
    """CPU cores this process may use, counting each core once however many hardware threads
    (SMT siblings) it has: compute-bound matmuls gain nothing from a core's second thread."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if not cpus:
        return os.cpu_count() or 1
    cores = set()
    for cpu in cpus:
        try:
            with open(f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list") as f:
                cores.add(f.read().strip())
        except OSError:  # no topology to read (not Linux): every CPU counts
            return len(cpus)
    return max(1, len(cores))


def use_physical_cores() -> int:
    """Intra-op threads = physical cores, unless the user chose (``OMP_NUM_THREADS`` or an
    earlier ``torch.set_num_threads`` to something other than torch's default of one per
    logical CPU). Returns the thread count in use."""
    logical = os.cpu_count() or 1
    if "OMP_NUM_THREADS" not in os.environ and torch.get_num_threads() == logical:
        torch.set_num_threads(min(logical, physical_cores()))
    return torch.get_num_threads()


def device_gpu(device: torch.device) -> GPU:
    """The live device as a GPU record: memory it can still use (context already counted)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        usable = free + torch.cuda.memory_reserved(device)
        name = torch.cuda.get_device_name(device)
        bf16 = torch.cuda.is_bf16_supported()
        return GPU(name, usable, *peak_tflops(name), bf16, context=0)
    if device.type == "mps":
        return GPU("Apple MPS", int(torch.mps.recommended_max_memory()), 0.0, 0.0, context=0)
    # the share of available RAM a run may plan for (hostmem.HEADROOM), as the memory check
    return GPU("CPU RAM", usable_ram(), 0.0, 0.0, context=0)


def is_out_of_memory(error: BaseException) -> bool:
    """CUDA/MPS raise OutOfMemoryError; the CPU allocator raises a RuntimeError."""
    if isinstance(error, torch.OutOfMemoryError):
        return True
    text = str(error)
    return isinstance(error, RuntimeError) and (
        "can't allocate memory" in text or "out of memory" in text.lower()
    )


def _cpu_model() -> str:
    """The CPU's marketing name and the vector units torch can use (for bug reports)."""
    name, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and value.strip():
                    name = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
                    break
    except OSError:  # not Linux
        pass
    units = [unit for flag, unit in CPU_FEATURES if flag in flags]
    capability = getattr(torch.backends.cpu, "get_cpu_capability", lambda: "")()
    details = ([f"torch kernels: {capability}"] if capability else []) + (
        [f"CPU flags: {' '.join(units)}"] if units else []
    )
    return f"{name} ({'; '.join(details)})" if details else name


# /proc/cpuinfo flag -> what a bug report calls it
CPU_FEATURES = [
    ("avx2", "AVX2"),
    ("avx512f", "AVX512"),
    ("avx512_bf16", "AVX512-BF16"),
    ("amx_tile", "AMX"),
    ("amx_bf16", "AMX-BF16"),
    ("asimd", "NEON"),
    ("sve", "SVE"),
]


def environment_report() -> list[str]:
    """minigpt's, Python's and torch's versions and the devices, one per line
    (``minigpt --version``, for bug reports)."""
    from minigpt._version import __version__

    lines = [
        f"minigpt {__version__}",
        f"Python {platform.python_version()} ({platform.platform()})",
        f"torch {torch.__version__} (CUDA {torch.version.cuda or 'none'})",
        f"CPU: {_cpu_model()}, {os.cpu_count()} logical CPUs",
        f"RAM: {size(available_ram())} available to this process",
    ]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            major, minor = torch.cuda.get_device_capability(i)
            lines.append(f"cuda:{i}: {torch.cuda.get_device_name(i)} (compute {major}.{minor})")
    elif getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        lines.append(f"mps: Apple GPU ({platform.machine()})")
    else:
        lines.append("GPU: none (no CUDA or MPS device torch can use)")
    return lines
