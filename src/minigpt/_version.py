"""The package version, and the oldest torch the code runs on, in a module that imports
nothing heavy: the package root and the CLI read both before any stage (or torch) loads."""

from __future__ import annotations

import re

__version__ = "0.1.0"

# The floor pyproject.toml declares (its comment lists the newest APIs the code uses); the
# package root (on a stage's first use) and the CLI (before a command that needs torch) check
# it, so an older torch fails in one line instead of an AttributeError deep inside a command.
TORCH_FLOOR = (2, 6)


def older_than(version: str, floor: tuple[int, int]) -> bool:
    """Whether ``version`` ("2.13.0+cpu", "4.53.0") is below (major, minor) ``floor``; a
    version that cannot be read counts as new enough."""
    match = re.match(r"(\d+)\.(\d+)", version)
    return match is not None and (int(match.group(1)), int(match.group(2))) < floor


def torch_too_old(version: str) -> str | None:
    """The one-line error for a torch older than ``TORCH_FLOOR``; None when it is new enough."""
    if not older_than(version, TORCH_FLOOR):
        return None
    floor = ".".join(map(str, TORCH_FLOOR))
    return (
        f"minigpt {__version__} needs torch>={floor}, but torch {version} is installed; "
        f"upgrade it: pip install -U 'torch>={floor}'"
    )


def require_torch() -> None:
    """Import torch and raise ImportError with ``torch_too_old``'s line when it is below the
    floor. Called where torch is first needed, not at ``import minigpt``: importing torch
    takes seconds, which commands like ``minigpt --help`` should not pay."""
    import torch

    if message := torch_too_old(torch.__version__):
        raise ImportError(message)
