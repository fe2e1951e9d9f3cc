"""Shared by the benchmark scripts: describe the machine and update BENCHMARKS.md in place.

Each script owns one section of BENCHMARKS.md, delimited by HTML comments, and replaces only
that section when it runs, so scripts can be re-run in any order.
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import torch

BENCHMARKS_FILE = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"


def machine_description() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (
        f"{cpu}, {os.cpu_count()} cores, {gpu}; torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), Python {platform.python_version()}; "
        f"{time.strftime('%Y-%m-%d')}"
    )


def update_section(name: str, markdown: str, path: Path = BENCHMARKS_FILE) -> None:
    """Replace (or append) the section ``name`` of BENCHMARKS.md with ``markdown``."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{markdown.strip()}\n{end}"
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")
