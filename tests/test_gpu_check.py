"""benchmarks/gpu_check.py --dry-run: the GPU check's code paths at tiny sizes on the CPU.

No GPU is lent to this project most days; running the whole check here (about 20 CPU
seconds, over 10 s of wall time on a busy machine: it trains three tiny models, measures
peak memory in a fresh process and generates) is what keeps the script working for the day
one is.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"


def test_dry_run_passes_every_check_and_prints_one_table():
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--dry-run"],
        capture_output=True, text=True, env=env, timeout=600, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| ")][2:]
    checks = [row.split(" | ")[0].removeprefix("| ") for row in rows]
    assert [c.split(" (")[0] for c in checks] == [
        "train course-100m",
        "train modern-124m",
        "peak memory course-100m micro 32",
        "peak memory course-100m micro 32",
        "loss parity bfloat16 vs float32",
        "loss parity float16 vs float32",
        "generation 0M float32",
        "generation 0M bfloat16",
    ]
    assert all(row.endswith("| yes |") for row in rows)
    assert "tok/s" in rows[0] and "plan/measured" in rows[2]


def test_no_gpu_without_dry_run_is_one_line_and_nonzero():
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--no-record"],
        capture_output=True, text=True, env=env, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "no CUDA GPU here" in proc.stdout and "--dry-run" in proc.stdout


def test_missing_requirements_are_named():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import gpu_check

    assert gpu_check.missing_modules(("torch", "surely_no_such_module_here")) == [
        "surely_no_such_module_here"
    ]
