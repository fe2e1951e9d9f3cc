"""Where the project's shared data (seeds, Tiny Shakespeare) is: one lookup for the fixtures
and the docs harness, so that no test that needs it skips silently in a git worktree.

``$MINIGPT_SHARED`` names the folder; without it, the first ``shared`` folder with the data
in it beside the checkout or above it: ``../shared`` for a clone, ``/work/shared`` for a
worktree at ``/work/wt/NAME`` (as ``benchmarks/train_step_race.py`` looks it up).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

SHARED_ENV = "MINIGPT_SHARED"
REPO = Path(__file__).resolve().parents[1]
# What marks a folder named shared as the project's, not some unrelated one higher up.
CONTENTS = ("data", "seeds")


def shared_folder(repo: Path = REPO, environ: Mapping[str, str] = os.environ) -> Path | None:
    """The shared data folder (see the module docstring), or None where there is none."""
    given = environ.get(SHARED_ENV)
    if given:
        return Path(given) if Path(given).is_dir() else None
    return next(
        (
            p / "shared"
            for p in repo.parents
            if any((p / "shared" / name).is_dir() for name in CONTENTS)
        ),
        None,
    )
