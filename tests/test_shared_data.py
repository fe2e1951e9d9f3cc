"""The shared data folder is found from a clone and from a git worktree, or where
$MINIGPT_SHARED says; nothing else named shared is taken for it."""

from __future__ import annotations

from pathlib import Path

from tests.shared_data import SHARED_ENV, shared_folder


def layout(root: Path, *folders: str) -> None:
    for folder in folders:
        (root / folder).mkdir(parents=True)


def test_found_beside_a_clone_and_above_a_worktree(tmp_path: Path) -> None:
    layout(tmp_path, "work/shared/seeds", "work/main/tests", "work/wt/name/tests")
    assert shared_folder(tmp_path / "work/main", {}) == tmp_path / "work/shared"
    # /work/wt/NAME: ../shared is /work/wt/shared, absent; the one above is the project's
    assert shared_folder(tmp_path / "work/wt/name", {}) == tmp_path / "work/shared"


def test_environment_variable_wins(tmp_path: Path) -> None:
    layout(tmp_path, "work/shared/data", "work/main", "elsewhere/data")
    given = {SHARED_ENV: str(tmp_path / "elsewhere")}
    assert shared_folder(tmp_path / "work/main", given) == tmp_path / "elsewhere"
    missing = {SHARED_ENV: str(tmp_path / "nowhere")}
    assert shared_folder(tmp_path / "work/main", missing) is None


def test_an_unrelated_shared_folder_is_not_taken(tmp_path: Path) -> None:
    layout(tmp_path, "shared/unrelated", "work/main")
    assert shared_folder(tmp_path / "work/main", {}) is None
