"""Executable docs (issue 18, convention in DOCTEST.md): parse a page, run its blocks, check them.

A page's ```bash blocks are what a reader types; a ```text block right after one is the output
they will see, and `test-figures` lists the numbers the prose quotes. Running the blocks in a
fresh folder that looks like a clone and matching the real output is what keeps the pages from
rotting when a command, a flag or a number changes.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tests.shared_data import SHARED_ENV

REPO = Path(__file__).resolve().parents[1]
DOC_DIRS = ("docs/course", "docs/ru")
FORBIDDEN_FENCES = ("sh", "shell", "console")
BLOCK_DIRECTIVES = ("replace", "skip", "needs", "output")
# Names of the repository root that a fresh clone does not have, or that a page creates itself.
NOT_LINKED = {".git", ".venv", "data", "runs", "out", "build", "dist", "__pycache__"}
ELLIPSIS = "\u2026"
DIRECTIVE = re.compile(r"^\s*<!--\s*test-([a-z-]+)\s*:\s*(.*?)\s*-->\s*$")
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})\s*([^`]*?)\s*$")


@dataclass
class Block:
    """One fenced block and the directives written directly above it."""

    lang: str
    code: str
    line: int
    replaces: list[tuple[str, str]] = field(default_factory=list)
    skip: str | None = None
    needs: list[str] = field(default_factory=list)
    output_skip: bool = False
    expected: Block | None = None

    @property
    def runs(self) -> bool:
        return self.lang in ("bash", "python run")

    def script(self) -> str:
        """The code as the test runs it: with the test-replace substitutions applied."""
        code = self.code
        for old, new in self.replaces:
            code = code.replace(old, new)
        return code


@dataclass
class Figure:
    value: str
    line: int


@dataclass
class Page:
    blocks: list[Block] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def steps(self) -> list[Block]:
        return [b for b in self.blocks if b.runs]


def parse_page(text: str) -> Page:
    """Blocks, their directives and expected outputs, figures, and every convention breach."""
    page = Page()
    lines = text.splitlines()
    pending: list[tuple[int, str, str]] = []  # block directives waiting for their block
    prose: list[str] = []  # the current paragraph or table, for test-figures
    last_prose: list[str] = []
    previous: Block | None = None  # the last block, while only blank lines follow it
    i = 0
    while i < len(lines):
        line, number = lines[i], i + 1
        directive = DIRECTIVE.match(line)
        fence = FENCE.match(line)
        if directive:
            name, value = directive.groups()
            if name == "figures":
                _add_figures(page, value, number, prose or last_prose)
            elif name in BLOCK_DIRECTIVES:
                pending.append((number, name, value))
            else:
                page.errors.append(f"line {number}: unknown directive test-{name}")
        elif fence:
            end = _closing(lines, i, fence.group(1))
            if end is None:
                page.errors.append(f"line {number}: fence never closed")
                break
            block = Block(fence.group(2).lower(), "\n".join(lines[i + 1 : end]) + "\n", number)
            _attach(page, block, pending, previous)
            pending, previous, prose, last_prose = [], block, [], []
            i = end + 1
            continue
        elif line.strip():
            if pending:
                page.errors.append(
                    f"line {pending[0][0]}: test-{pending[0][1]} is not directly above a block"
                )
                pending = []
            prose.append(line)
            previous = None
        elif prose:
            last_prose, prose = prose, []
        i += 1
    for number, name, _ in pending:
        page.errors.append(f"line {number}: test-{name} is not directly above a block")
    return page


def _closing(lines: list[str], start: int, opener: str) -> int | None:
    for j in range(start + 1, len(lines)):
        stripped = lines[j].strip()
        if stripped and set(stripped) == {opener[0]} and len(stripped) >= len(opener):
            return j
    return None


def _attach(page: Page, block: Block, pending: list, previous: Block | None) -> None:
    """Give the block its directives; a text block right after a bash block is its output."""
    where = f"line {block.line}"
    if block.lang in FORBIDDEN_FENCES:
        page.errors.append(f"{where}: ```{block.lang} fence: tag commands ```bash (they are run)")
    elif not block.lang:
        page.errors.append(f"{where}: untagged fence: tag it ```bash, ```text, ```python, ...")
    for number, name, value in pending:
        if name == "output":
            if value != "skip" or block.lang != "text":
                page.errors.append(
                    f"line {number}: test-output: skip belongs above a ```text block"
                )
            block.output_skip = True
        elif not block.runs:
            page.errors.append(
                f"line {number}: test-{name} above a ```{block.lang} block (not run)"
            )
        elif name == "replace":
            old, sep, new = value.partition(" | ")
            if not sep or not old:
                page.errors.append(f"line {number}: test-replace needs 'OLD | NEW'")
            elif old not in block.code:
                page.errors.append(f"line {number}: test-replace: {old!r} is not in the block")
            else:
                block.replaces.append((old, new))
        elif name == "skip":
            if not value:
                page.errors.append(f"line {number}: test-skip needs a reason")
            block.skip = value or "no reason given"
        elif name == "needs":
            if value != "shared":
                page.errors.append(f"line {number}: test-needs knows only 'shared', not {value!r}")
            block.needs.append(value)
    if block.lang == "text" and previous is not None and previous.runs:
        previous.expected = block
    elif block.output_skip:
        page.errors.append(f"{where}: test-output: skip on a ```text block that follows no command")
    page.blocks.append(block)


def _add_figures(page: Page, value: str, number: int, prose: list[str]) -> None:
    """Figures must be quoted in the paragraph or table above: the check is about that text."""
    try:
        values = shlex.split(value)
    except ValueError as e:
        page.errors.append(f"line {number}: test-figures: {e}")
        return
    if not values:
        page.errors.append(f"line {number}: test-figures lists nothing")
    text = _normalize("\n".join(prose))
    for figure in values:
        if not _occurs(figure, text):
            page.errors.append(
                f"line {number}: figure {figure} is not in the paragraph or table above"
            )
        page.figures.append(Figure(figure, number))


def _normalize(text: str) -> str:
    return re.sub(r"[ \t\u00a0]+", " ", text).strip()


def _occurs(figure: str, text: str) -> bool:
    """The figure as a whole number: 85,056 is not found inside 185,056 or 85,056,000."""
    figure = _normalize(figure)
    pattern = r"(?<![\w,.])" + re.escape(figure) + r"(?![\w]|[,.]\d)"
    return re.search(pattern, text) is not None


def output_lines(output: str) -> list[str]:
    """The output's lines, normalized; a carriage return (progress bars) also ends a line."""
    return [_normalize(s) for s in re.split(r"\r\n|\r|\n", output) if s.strip()]


def line_pattern(expected: str) -> re.Pattern[str]:
    parts = [re.escape(part) for part in _normalize(expected).split(ELLIPSIS)]
    return re.compile(".*".join(parts))


def missing_line(expected: str, output: str) -> str | None:
    """The first expected line not found, in order, as a whole line of the output, else None."""
    actual = output_lines(output)
    at = 0
    for want in expected.splitlines():
        if not want.strip():
            continue
        pattern = line_pattern(want)
        while at < len(actual) and not pattern.fullmatch(actual[at]):
            at += 1
        if at == len(actual):
            return want
        at += 1
    return None


def missing_figures(page: Page, outputs: list[str]) -> list[Figure]:
    text = "\n".join(_normalize(o) for o in outputs)
    return [f for f in page.figures if not _occurs(f.value, text)]


def pages() -> list[Path]:
    found = []
    for folder in DOC_DIRS:
        found += sorted((REPO / folder).rglob("*.md"))
    return found


def make_clone(root: Path, shared: Path | None) -> Path:
    """A folder that looks like a fresh clone (repo entries linked) with ../shared beside it."""
    clone = root / "clone"
    clone.mkdir(parents=True)
    for entry in REPO.iterdir():
        if entry.name not in NOT_LINKED and not entry.name.startswith("."):
            (clone / entry.name).symlink_to(entry)
    if shared is not None:
        (root / "shared").symlink_to(shared)
    return clone


def block_env() -> dict[str, str]:
    """The venv's minigpt first on PATH, this checkout's source, one thread, plain output."""
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = str(REPO / "src")
    env.update(OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", COLUMNS="100", NO_COLOR="1")
    env.pop(SHARED_ENV, None)
    return env


@dataclass
class Result:
    code: int | None  # None: timed out
    output: str


def run_block(block: Block, cwd: Path, timeout: float) -> Result:
    """One block in its own process (cd and exports do not carry), stderr merged into stdout."""
    with tempfile.NamedTemporaryFile("w", suffix=".block", delete=False, dir=cwd.parent) as f:
        f.write(block.script())
    command = ["bash", "-e", f.name] if block.lang == "bash" else ["python", f.name]
    try:
        done = subprocess.run(
            command,
            cwd=cwd,
            env=block_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            check=False,
        )
        return Result(done.returncode, done.stdout.decode("utf-8", "replace"))
    except subprocess.TimeoutExpired as e:
        return Result(None, (e.stdout or b"").decode("utf-8", "replace"))
    finally:
        os.unlink(f.name)


def skip_reason(block: Block, shared: Path | None) -> str | None:
    if block.skip is not None:
        return block.skip
    if "shared" in block.needs and shared is None:
        return "needs ../shared (seeds, Tiny Shakespeare), which is absent"
    return None


def tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class Report:
    failures: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "LINE: reason" per block not run
    shared_missing: bool = False
    ran: int = 0  # blocks run


def check_page(text: str, root: Path, shared: Path | None, timeout: float) -> Report:
    """Run a page's blocks in order in one fresh clone under root; stop at the first failure."""
    page, report = parse_page(text), Report()
    if page.errors:
        report.failures += page.errors
        return report
    clone = make_clone(root, shared)
    outputs = []
    for block in page.steps:
        where = f"line {block.line}"
        reason = skip_reason(block, shared)
        if reason is not None:
            report.skipped.append(f"{where}: {reason}")
            report.shared_missing |= not block.skip
            continue
        result = run_block(block, clone, timeout)
        report.ran += 1
        outputs.append(result.output)
        if result.code != 0:
            how = f"timed out after {timeout:g} s" if result.code is None else f"exit {result.code}"
            report.failures.append(
                f"{where}: {how}\n--- ran:\n{block.script()}--- output:\n{tail(result.output)}"
            )
            return report
        expected = block.expected
        if expected is not None and not expected.output_skip:
            missing = missing_line(expected.code, result.output)
            if missing is not None:
                report.failures.append(
                    f"{where}: expected output line not found (in order): {missing!r}\n"
                    f"--- ran:\n{block.script()}--- output:\n{tail(result.output)}"
                )
                return report
    for figure in missing_figures(page, outputs):
        message = f"line {figure.line}: figure {figure.value} is in no block's output"
        if report.shared_missing:
            report.skipped.append(message + " (blocks that need ../shared did not run)")
        else:
            report.failures.append(message)
    return report
