"""Cleaning documents before tokenization: each step switchable, each counted.

The steps, in order: repair of mojibake (UTF-8 text that was once decoded as Latin-1, cp1252
or MacRoman, e.g. ``GÃ¼n`` for ``Gün``, ``tÉ™lim`` for ``təlim``) with ftfy; removal of
control characters (tab, newline and carriage return stay); Unicode NFC normalisation.
Duplicate removal and the minimum length are decided by ``prepare`` from what this returns.

ftfy is thorough but slow (a few MB/s), so it only looks at documents where a cheap regex finds
a sign of mojibake: a UTF-8 lead byte followed by a continuation byte, both as one of those
encodings shows them. Clean text, and text in other scripts, skip it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass


@dataclass
class CleanConfig:
    """Which cleaning steps run (all on by default, except the minimum length)."""

    fix_mojibake: bool = True
    control_chars: bool = True
    nfc: bool = True
    dedupe: bool = True
    min_chars: int = 0


CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _mojibake_signs() -> re.Pattern[str]:
    """Lead byte + continuation byte of UTF-8, as Latin-1, cp1252 and MacRoman show them."""
    alternatives = []
    for encoding in ("latin-1", "cp1252", "mac_roman"):
        lead = bytes(range(0xC2, 0xF5)).decode(encoding, errors="ignore")
        cont = bytes(range(0x80, 0xC0)).decode(encoding, errors="ignore")
        alternatives.append(f"[{re.escape(lead)}][{re.escape(cont)}]")
    return re.compile("|".join(alternatives))


MOJIBAKE_SIGNS = _mojibake_signs()


def fix_mojibake(text: str) -> str:
    """Undo mis-decoded UTF-8 with ftfy, changing nothing else (quotes, widths, line breaks)."""
    if text.isascii() or not MOJIBAKE_SIGNS.search(text):
        return text
    import ftfy

    config = ftfy.TextFixerConfig(
        unescape_html=False,
        remove_terminal_escapes=False,
        fix_latin_ligatures=False,
        fix_character_width=False,
        uncurl_quotes=False,
        fix_line_breaks=False,
        fix_surrogates=False,
        remove_control_chars=False,
        normalization=None,
        explain=False,
    )
    return ftfy.fix_text(text, config)


def clean_text(text: str, config: CleanConfig) -> tuple[str, dict[str, int]]:
    """The cleaned text and what changed: documents fixed per step, control chars removed."""
    counts = {}
    if config.fix_mojibake:
        fixed = fix_mojibake(text)
        counts["mojibake_fixed"] = int(fixed != text)
        text = fixed
    if config.control_chars:
        text, n = CONTROL.subn("", text)
        counts["control_chars_removed"] = n
    if config.nfc and not text.isascii() and not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
        counts["nfc_changed"] = 1
    return text, counts
