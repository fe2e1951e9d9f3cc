"""The one exception type users see.

Anything raised as ``MiniGPTError`` is a problem with the user's input or environment: the CLI
prints its message on one line and exits non-zero, without a traceback. Anything else is a bug.
"""

from __future__ import annotations

import errno
import re
import shutil
from pathlib import Path


class MiniGPTError(Exception):
    """A user-facing error whose message says what is wrong and how to fix it."""


# Why a write failed for lack of room, by errno (safetensors reports it as "os error N").
_OUT_OF_ROOM = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EFBIG: "the file size limit was reached (ulimit -f)",
}


def format_bytes(n: float) -> str:
    """512 B, 3.0 GiB: a size for people."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"  # pragma: no cover


def out_of_room(error: BaseException, path: str | Path, needed: int | None = None) -> str | None:
    """Half a line saying a write ran out of room (what, where, how much is free and, when
    known, needed), or None when ``error`` is something else. Callers add what survived."""
    code = getattr(error, "errno", None)
    if code is None and (m := re.search(r"os error (\d+)", str(error))):
        code = int(m.group(1))
    if code not in _OUT_OF_ROOM:
        return None
    where = Path(path)
    while not where.exists() and where != where.parent:
        where = where.parent
    free = shutil.disk_usage(where).free
    need = f", about {format_bytes(needed)} needed" if needed else ""
    return f"{_OUT_OF_ROOM[code]} writing {path} ({format_bytes(free)} free there{need})"
