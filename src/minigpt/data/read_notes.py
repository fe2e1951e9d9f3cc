"""What reading the inputs found, for the dataset report (encodings chosen by a byte-order
mark, line ends normalised, NUL bytes dropped, bad JSON lines skipped, links not followed),
and the check that no input changed while ``prepare`` read it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from minigpt.errors import MiniGPTError

FIRST_BAD_LINES = 5


@dataclass
class FileNotes:
    """What reading one file found, for the dataset report."""

    encoding: str = "utf-8"
    bom: bool = False
    crlf: int = 0
    cr: int = 0
    nul_removed: int = 0
    bad_lines: int = 0
    first_bad_lines: list[int] = field(default_factory=list)

    def bad_line(self, lineno: int) -> None:
        self.bad_lines += 1
        if len(self.first_bad_lines) < FIRST_BAD_LINES:
            self.first_bad_lines.append(lineno)


@dataclass
class ReadNotes:
    """What reading found, for the report: per file (encoding, line ends, bad lines), the
    links not followed, and each file's (size, mtime) when first seen."""

    files: dict[str, FileNotes] = field(default_factory=dict)
    not_followed: list[str] = field(default_factory=list)
    stamps: dict[str, tuple[int, int]] = field(default_factory=dict)

    def check_unchanged(self, path: Path) -> None:
        """Refuse a file whose size or modification time moved since it was first seen."""
        try:
            st = path.stat()
        except FileNotFoundError:
            raise MiniGPTError(
                f"{path} disappeared while prepare was reading it; re-run prepare"
            ) from None
        now = (st.st_size, st.st_mtime_ns)
        before = self.stamps.setdefault(str(path), now)
        if now != before:
            raise MiniGPTError(
                f"{path} changed while prepare was reading it ({before[0]:,} -> {now[0]:,} "
                "bytes, or a new modification time); re-run prepare once nothing writes to it"
            )

    def check_files(self, paths: Sequence[Path]) -> None:
        for path in paths:
            self.check_unchanged(path)

    def report(self) -> dict:
        """Totals over the files, and one line saying what was changed or skipped."""
        notes = self.files.values()
        total = {k: sum(getattr(n, k) for n in notes) for k in ("crlf", "cr", "nul_removed")}
        bad = {p: n for p, n in self.files.items() if n.bad_lines}
        out = {
            "encodings": {  # those a byte-order mark chose
                p: n.encoding for p, n in self.files.items() if n.bom and n.encoding != "utf-8"
            },
            "boms_removed": sum(n.bom for n in notes),
            **total,
            "bad_lines_skipped": sum(n.bad_lines for n in bad.values()),
            "first_bad_lines": [f"{p}:{i}" for p, n in bad.items() for i in n.first_bad_lines],
            "not_followed": self.not_followed,
        }
        said = [
            f"{_some([p for p, c in out['encodings'].items() if c == codec])} decoded as {codec}"
            for codec in sorted(set(out["encodings"].values()))
        ]
        if out["boms_removed"]:
            said.append(f"{out['boms_removed']} byte-order mark(s) removed")
        if total["crlf"] or total["cr"]:
            said.append(f"{total['crlf']:,} CRLF and {total['cr']:,} CR line ends made \\n")
        if total["nul_removed"]:
            said.append(f"{total['nul_removed']:,} NUL bytes dropped")
        if out["bad_lines_skipped"]:
            said.append(
                f"{out['bad_lines_skipped']:,} bad line(s) skipped "
                f"({', '.join(out['first_bad_lines'])}"
                f"{', ...' if out['bad_lines_skipped'] > len(out['first_bad_lines']) else ''})"
            )
        if self.not_followed:
            said.append(
                f"{len(self.not_followed)} link(s) not followed: {_some(self.not_followed)}"
            )
        out["summary"] = "; ".join(said)
        return out


def _some(items: list[str], n: int = 3) -> str:
    return ", ".join(items[:n]) + (f" and {len(items) - n} more" if len(items) > n else "")
