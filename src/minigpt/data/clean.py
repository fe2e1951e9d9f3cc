"""Cleaning documents before tokenization: each step switchable, each counted.

The steps, in order: repair of mojibake (UTF-8 text that was once decoded with the wrong code
page, e.g. ``GÃ¼n`` for ``Gün``, ``–ú–∏`` for ``Ми``; see ``mojibake``); removal of control
characters (tab, newline and carriage return stay); Unicode NFC normalisation. Duplicate
removal and the minimum length are decided by ``prepare`` from what this returns.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from minigpt.data.mojibake import fix_mojibake


@dataclass
class CleanConfig:
    """Which cleaning steps run (all on by default, except the minimum length)."""

    fix_mojibake: bool = True
    control_chars: bool = True
    nfc: bool = True
    dedupe: bool = True
    min_chars: int = 0


# The prefix of the counts of repaired lines, one key per undone decoding.
MOJIBAKE_LINES = "mojibake_lines:"

CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def clean_text(text: str, config: CleanConfig) -> tuple[str, dict[str, int]]:
    """The cleaned text and what changed: documents fixed per step, control chars removed,
    and lines of mojibake repaired per undone decoding (``mojibake_lines:<decoding>``)."""
    counts = {}
    if config.fix_mojibake:
        fixed, repair = fix_mojibake(text)
        counts["mojibake_fixed"] = int(fixed != text)
        for label, n in repair.lines.items():
            counts[MOJIBAKE_LINES + label] = n
        if repair.lost:
            counts["mojibake_lost"] = repair.lost
        text = fixed
    if config.control_chars:
        text, n = CONTROL.subn("", text)
        counts["control_chars_removed"] = n
    if config.nfc and not text.isascii() and not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
        counts["nfc_changed"] = 1
    return text, counts
