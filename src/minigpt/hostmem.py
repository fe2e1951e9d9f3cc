"""How much host memory (RAM) this process may still use, and the check that refuses a job
that would not fit before it allocates anything.

Without the check a CPU run that cannot fit grows until the kernel's OOM killer picks a
victim, which need not be minigpt (issue 19: ``--block-size 100000`` passed 11 GB in its
first step). Every command that places work on the CPU (train, sample, chat, eval, serve)
estimates its peak and calls ``require_ram`` first.

What "available" means: the kernel's ``MemAvailable`` (free memory plus the page cache and
slabs it can reclaim without swapping; not ``MemFree``, which ignores the cache), capped by
the room left under the process's cgroup limit, which is what a container actually gets:
``memory.max`` (cgroup v2, every ancestor) or ``hierarchical_memory_limit`` (v1), minus the
group's usage net of its inactive page cache (reclaimable, as ``docker stats`` counts it).

A leaf of the package: it imports nothing from minigpt but the errors.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from minigpt.errors import MiniGPTError

GiB = 1024**3
# The share of available memory a job may plan to use. The planner is within 15 % of the
# measured peak (BENCHMARKS.md, worst case 11 % under for bf16 autocast on CPU) and its CPU
# total already adds 10 % slack on top of the peak; the last 10 % of what is available is left
# to the rest of the machine: page cache for the memory-mapped dataset, other processes' growth.
HEADROOM = 0.9
NO_CHECK_ENV = "MINIGPT_NO_MEMORY_CHECK"
NO_CHECK_HINT = f"--no-memory-check (or {NO_CHECK_ENV}=1) skips this check"
_UNLIMITED = 1 << 60  # cgroup v1 writes "no limit" as a number near 2**63
CGROUP_ROOT = Path("/sys/fs/cgroup")


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None  # v2 writes "max" for no limit


def _stat(path: Path, key: str) -> int:
    """One field of a cgroup's memory.stat (0 when missing)."""
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


def _meminfo_available(meminfo: Path = Path("/proc/meminfo")) -> int | None:
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _own_cgroups(proc_cgroup: Path) -> dict[str, str]:
    """controller -> path of this process's cgroup ("" for the v2 unified hierarchy)."""
    groups: dict[str, str] = {}
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return groups
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) == 3:
            for controller in parts[1].split(",") if parts[1] else [""]:
                groups[controller] = parts[2]
    return groups


def _group_dir(base: Path, path: str) -> Path:
    """The cgroup's folder; inside a cgroup namespace the process sees its group as the root."""
    folder = base / path.lstrip("/")
    return folder if folder.is_dir() else base


def cgroup_room(root: Path = CGROUP_ROOT, proc_cgroup: Path | None = None) -> int | None:
    """Bytes left under this process's cgroup memory limit; None when no limit applies."""
    groups = _own_cgroups(proc_cgroup or Path("/proc/self/cgroup"))
    rooms = []
    if "memory" in groups:  # v1: the memory controller's own hierarchy
        folder = _group_dir(root / "memory", groups["memory"])
        limit = _stat(folder / "memory.stat", "hierarchical_memory_limit") or _read_int(
            folder / "memory.limit_in_bytes"
        )
        usage = _read_int(folder / "memory.usage_in_bytes")
        if limit and limit < _UNLIMITED and usage is not None:
            cache = _stat(folder / "memory.stat", "total_inactive_file")
            rooms.append(limit - usage + cache)
    if "" in groups:  # v2: the limit of the group and of every ancestor counts
        base = root if (root / "cgroup.controllers").exists() else root / "unified"
        folder = _group_dir(base, groups[""])
        while True:
            limit = _read_int(folder / "memory.max")
            usage = _read_int(folder / "memory.current")
            if limit is not None and usage is not None:
                rooms.append(limit - usage + _stat(folder / "memory.stat", "inactive_file"))
            if folder == base or base not in folder.parents:
                break
            folder = folder.parent
    return max(0, min(rooms)) if rooms else None


def available_ram() -> int:
    """Bytes of RAM this process can still allocate without swapping or meeting its cgroup
    limit (see the module's docstring)."""
    available = _meminfo_available()
    if available is None:  # not Linux
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):  # assume a small laptop
            available = 8 * GiB
    room = cgroup_room()
    return available if room is None else min(available, room)


def local_processes() -> int:
    """Processes of this job on this machine that share its RAM: torchrun's local ranks."""
    try:
        return max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    except ValueError:
        return 1


def usable_ram() -> int:
    """What one process may plan to use: ``HEADROOM`` of the available RAM, split over the
    processes that start together on this machine (ranks of a CPU torchrun)."""
    return int(HEADROOM * available_ram()) // local_processes()


def check_disabled() -> bool:
    return os.environ.get(NO_CHECK_ENV, "").strip().lower() not in ("", "0", "false", "no")


def require_ram(need: int, what: str, fix: str) -> None:
    """Refuse, in one line, a job whose estimated peak ``need`` (bytes) exceeds the usable RAM.

    ``what`` says what needs it ("training at micro-batch 12 x 100,000 tokens"), ``fix`` the
    suggestion. ``MINIGPT_NO_MEMORY_CHECK=1`` (``--no-memory-check``) turns the check off.
    """
    if check_disabled():
        return
    usable = usable_ram()
    if need <= usable:
        return
    share = local_processes()
    per = f" per process ({share} on this machine)" if share > 1 else ""
    raise MiniGPTError(
        f"{what} needs about {size(need)} of RAM{per}, but only {size(usable)} is usable "
        f"({HEADROOM:.0%} of {size(available_ram())} available); {fix}; {NO_CHECK_HINT}"
    )


def largest_fitting(fits: Callable[[int], bool], limit: int = 1 << 16) -> int:
    """The largest n <= ``limit`` for which ``fits(n)`` holds, memory growing with n (a batch,
    a block, a token count); 0 if not even 1 fits. Doubling, then bisection."""
    if not fits(1):
        return 0
    lo, hi = 1, 2
    while hi <= limit and fits(hi):
        lo, hi = hi, hi * 2
    hi = min(hi, limit + 1)
    while hi - lo > 1:  # fits(lo) and not fits(hi)
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo


def size(n: int) -> str:
    """Bytes for a message: GiB from 1 GiB up, else MiB."""
    return f"{gib(n)} GiB" if n >= GiB else f"{n / 1024**2:.1f} MiB"


def gib(n: int) -> str:
    """Bytes as GiB with two decimals, as the planner's messages show them."""
    return f"{n / GiB:.2f}"
