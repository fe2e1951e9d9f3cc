"""Every page of docs/course/ and docs/ru/ is run and its outputs and figures checked (DOCTEST.md).

The harness itself is tested below on small inline pages, so that a wrong figure, a wrong
output line or a failing command is seen to fail.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import pytest

from tests.docs_helpers import (
    REPO,
    check_page,
    missing_figures,
    missing_line,
    pages,
    parse_page,
)
from tests.shared_data import shared_folder

# Per block: generous for a loaded CI machine; a page's blocks take seconds at reduced sizes.
TIMEOUT = float(os.environ.get("MINIGPT_DOCS_TIMEOUT", "300"))
PAGES = pages()


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(REPO).as_posix() for p in PAGES])
def test_page(page: Path, tmp_path: Path) -> None:
    name = page.relative_to(REPO).as_posix()
    report = check_page(page.read_text(encoding="utf-8"), tmp_path, shared_folder(), TIMEOUT)
    assert not report.failures, f"{name}: " + "\n".join(report.failures)
    skipped = [f"{name} {s}" for s in report.skipped]
    if skipped and report.ran == 0:
        pytest.skip("; ".join(skipped))
    if skipped:
        warnings.warn("not run:\n" + "\n".join(skipped), stacklevel=1)


def check(text: str, tmp_path: Path, shared: Path | None = None):
    return check_page(text, tmp_path, shared, timeout=30)


def test_bash_block_output_is_checked(tmp_path: Path) -> None:
    page = "Run it:\n\n```bash\necho 'total:   85,056,000 params'\n```\n\n```text\ntotal: 85,056,000 params\n```\n"
    assert check(page, tmp_path / "a").failures == []
    wrong = page.replace("text\ntotal: 85,056,000", "text\ntotal: 85,056,001")
    failures = check(wrong, tmp_path / "b").failures
    assert len(failures) == 1 and "'total: 85,056,001 params'" in failures[0]


def test_expected_lines_match_whole_lines_in_order_with_wildcards() -> None:
    output = (
        "step 0: train loss 4.17, val loss 4.18\nstep 100: train loss 2.51, val loss 2.55\r\ndone\n"
    )
    assert missing_line("step 0: train loss …, val loss …\n\ndone", output) is None
    assert missing_line("step …: train loss 2.51, val loss 2.55", output) is None
    assert missing_line("done\nstep 0: train loss …, val loss …", output) == (
        "step 0: train loss …, val loss …"
    )
    assert missing_line("step 100: train loss 2.5", output) == "step 100: train loss 2.5"
    assert missing_line("step 200: train loss …", output) == "step 200: train loss …"


def test_figures_must_occur_in_some_output(tmp_path: Path) -> None:
    page = (
        "```bash\necho 'total 124,439,808'\n```\n\nThe model has 124,439,808 parameters.\n"
        "<!-- test-figures: 124,439,808 -->\n"
    )
    assert check(page, tmp_path / "a").failures == []
    wrong = page.replace("has 124,439,808", "has 124,439,809").replace(
        "figures: 124,439,808", "figures: 124,439,809"
    )
    failures = check(wrong, tmp_path / "b").failures
    assert failures == ["line 6: figure 124,439,809 is in no block's output"]


def test_figures_are_whole_numbers_and_quoted_in_the_prose_above() -> None:
    page = parse_page('It is 1.9 GB, or 85,056.\n<!-- test-figures: 85,056 "1.9 GB" -->\n')
    assert page.errors == []
    assert [f.value for f in page.figures] == ["85,056", "1.9 GB"]
    assert missing_figures(page, ["185,056 and 1.9 GB"])[0].value == "85,056"
    assert missing_figures(page, ["85,056,000 and 1.9 GB"])[0].value == "85,056"
    assert missing_figures(page, ["1.95 GB, 85,056."])[0].value == "1.9 GB"
    assert missing_figures(page, ["(85,056) 1.9  GB"]) == []
    stale = parse_page("It is 85,000.\n\n<!-- test-figures: 85,056 -->\n")
    assert stale.errors == ["line 3: figure 85,056 is not in the paragraph or table above"]


def test_replace_skip_and_state_carried_between_blocks(tmp_path: Path) -> None:
    page = (
        "<!-- test-replace: --max-iters 5000 | --max-iters 20 -->\n"
        "```bash\necho run --max-iters 5000 > log.txt\n```\n\n"
        "<!-- test-skip: needs an NVIDIA GPU -->\n```bash\nnvidia-smi-that-does-not-exist\n```\n\n"
        "```bash\ncat log.txt\n```\n```text\nrun --max-iters 20\n```\n"
    )
    report = check(page, tmp_path)
    assert report.failures == []
    assert report.skipped == ["line 7: needs an NVIDIA GPU"]


def test_failing_command_fails_the_page(tmp_path: Path) -> None:
    report = check("```bash\ntrue\nfalse\necho never\n```\n```text\nnever\n```\n", tmp_path)
    assert len(report.failures) == 1 and report.failures[0].startswith("line 1: exit 1")


def test_needs_shared(tmp_path: Path) -> None:
    page = "<!-- test-needs: shared -->\n```bash\nls ../shared\n```\n```text\nseeds\n```\n"
    report = check(page, tmp_path / "a", shared=None)
    assert report.failures == [] and report.shared_missing
    assert "needs ../shared" in report.skipped[0]
    shared = tmp_path / "fake-shared"
    (shared / "seeds").mkdir(parents=True)
    assert check(page, tmp_path / "b", shared=shared).failures == []
    assert check(page.replace("seeds\n```", "data\n```"), tmp_path / "c", shared).failures


def test_clone_has_the_repo_and_the_venv(tmp_path: Path) -> None:
    """Checked without importing torch (seconds per process): where minigpt would come from."""
    bin_dir = Path(sys.executable).parent
    page = (
        "```bash\nls examples > /dev/null\ntest ! -e data\ntest -L ../shared\ncommand -v minigpt\n```\n"
        f"```text\n{bin_dir / 'minigpt'}\n```\n"
        "```python run\nimport importlib.util, os\n"
        "print(os.environ['OMP_NUM_THREADS'], importlib.util.find_spec('minigpt').origin)\n```\n"
        f"```text\n1 {REPO / 'src' / 'minigpt' / '__init__.py'}\n```\n"
    )
    shared = tmp_path / "fake-shared"
    shared.mkdir()
    assert check(page, tmp_path / "run", shared).failures == []


@pytest.mark.parametrize(
    ("page", "error"),
    [
        ("```sh\nls\n```\n", "line 1: ```sh fence: tag commands ```bash (they are run)"),
        (
            "```console\n$ ls\n```\n",
            "line 1: ```console fence: tag commands ```bash (they are run)",
        ),
        ("```\nls\n```\n", "line 1: untagged fence: tag it ```bash, ```text, ```python, ..."),
        ("```bash\nls\n", "line 1: fence never closed"),
        ("<!-- test-skip: -->\n```bash\nls\n```\n", "line 1: test-skip needs a reason"),
        ("<!-- test-sikp: x -->\n```bash\nls\n```\n", "line 1: unknown directive test-sikp"),
        (
            "<!-- test-replace: 5000 | 20 -->\n```bash\nls\n```\n",
            "line 1: test-replace: '5000' is not in the block",
        ),
        (
            "<!-- test-replace: 5000 -->\n```bash\necho 5000\n```\n",
            "line 1: test-replace needs 'OLD | NEW'",
        ),
        (
            "<!-- test-skip: gpu -->\nSome prose.\n```bash\nls\n```\n",
            "line 1: test-skip is not directly above a block",
        ),
        (
            "<!-- test-skip: gpu -->\n```python\nprint(1)\n```\n",
            "line 1: test-skip above a ```python block (not run)",
        ),
        (
            "Prose.\n\n<!-- test-output: skip -->\n```text\nhello\n```\n",
            "line 4: test-output: skip on a ```text block that follows no command",
        ),
        (
            "<!-- test-needs: gpu -->\n```bash\nls\n```\n",
            "line 1: test-needs knows only 'shared', not 'gpu'",
        ),
    ],
)
def test_convention_breaches_are_reported(page: str, error: str) -> None:
    assert error in parse_page(page).errors


def test_output_skip_and_plain_python_blocks() -> None:
    page = parse_page(
        "```bash\necho $RANDOM\n```\n\n<!-- test-output: skip -->\n```text\n12345\n```\n\n"
        "```python\nprint('not run')\n```\n\nA text block on its own:\n```text\nnot an output\n```\n"
    )
    assert page.errors == []
    assert [b.lang for b in page.steps] == ["bash"]
    assert page.steps[0].expected is not None and page.steps[0].expected.output_skip
    assert page.blocks[-1].output_skip is False
