"""Undoing mojibake: UTF-8 text that was once decoded with the wrong single-byte code page.

``Минимальная`` saved as UTF-8 and opened as Mac Roman becomes ``–ú–∏–Ω–∏–º–∞–ª—å–Ω–∞—è``;
``Gündə`` opened as Windows-1252 becomes ``GÃ¼ndÉ™``. Such text re-encodes to the very bytes
it came from, so the repair is the reverse trip: encode with the wrong code page, decode as
UTF-8. Each line is tried with every usual wrong decoding (``WRONG_DECODINGS``), one and two
layers deep, and with ftfy (which also handles lines that mix good text and mojibake). A
candidate counts only when the trip is exact (no encode or decode error, except bytes the
wrong code page could not show at all, below), and it replaces the line only when
``implausibility`` scores it strictly lower: correct text scores 0 almost always, so nothing
can beat it, and correct text comes out unchanged. A line also needs ``MIN_EVIDENCE`` (one odd
pair is not enough), unless the repair undoes a decoding that the document's clear lines
already showed.

Some decoders drop the bytes their code page leaves undefined (0x81, 0x8D, 0x8F, 0x90, 0x9D
in Windows-1252): ``Əsas`` (C6 8F) arrives as ``Æsas``. A UTF-8 sequence one byte short is
completed with such a byte when exactly one completion is a letter the line, or the rest of
the document, uses elsewhere (in either case: ``ə`` vouches for ``Ə``); otherwise the character is beyond repair and becomes
U+FFFD, counted apart.

Cost: ``_sign_lines`` (a whole UTF-8 sequence, as some wrong code page
shows them) finds the lines worth a look; ASCII text costs one ``str.isascii``, and other text
without a sign one regex scan (see ``bench_mojibake.py`` in benchmarks/).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache

import ftfy
import ftfy.bad_codecs  # noqa: F401  (registers the sloppy-windows-* codecs)
from ftfy.badness import badness

# The codec of a wrong decoding -> its name in the report. The sloppy-windows-* codecs are
# the Windows code pages that also map their undefined bytes to U+0080..U+009F, as browsers and
# many editors decode them. Order breaks ties (the commoner mistake first).
WRONG_DECODINGS = {
    "sloppy-windows-1252": "Windows-1252",
    "latin-1": "Latin-1",
    "sloppy-windows-1254": "Windows-1254",
    "mac_roman": "Mac Roman",
    "sloppy-windows-1251": "Windows-1251",
    "koi8_r": "KOI8-R",
    "cp437": "CP437",
}

LEADS = bytes(range(0xC2, 0xF5))
CONTINUATIONS = bytes(range(0x80, 0xC0))


def _undefined(codec: str) -> bytes:
    """The bytes the strict code page cannot show: a strict decoder drops them."""
    if not codec.startswith("sloppy-"):
        return b""
    strict = codec.removeprefix("sloppy-").replace("windows-", "cp")
    return bytes(b for b in CONTINUATIONS if not bytes([b]).decode(strict, errors="ignore"))


UNDEFINED = {codec: _undefined(codec) for codec in WRONG_DECODINGS}


def _signs() -> tuple[re.Pattern[str], dict[str, frozenset[str]]]:
    """A UTF-8 lead byte then a continuation byte, as some wrong decoding shows them.

    One regex with a branch per code page scans at ~5 MB/s; the regex of "a lead of any code
    page, then a continuation of any" scans at 30-60 MB/s, and each of its (rarer) hits is
    then checked against the exact pairs: ~20,000 two-character strings, each with the code
    pages that show it."""
    leads, conts, pairs = set(), set(), {}
    for codec in WRONG_DECODINGS:
        lead = LEADS.decode(codec, errors="ignore")
        cont = CONTINUATIONS.decode(codec, errors="ignore")
        leads.update(lead)
        conts.update(cont)
        for pair in (a + b for a in lead for b in cont):
            pairs[pair] = pairs.get(pair, frozenset()) | {codec}
    pattern = f"[{re.escape(''.join(sorted(leads)))}][{re.escape(''.join(sorted(conts)))}]"
    return re.compile(pattern), pairs


MAYBE_SIGN, SIGN_CODECS = _signs()
# Per wrong decoding: how many bytes each lead character starts, and the continuations.
SEQUENCE_SIZE = {
    codec: {bytes([b]).decode(codec): 2 if b < 0xE0 else 3 if b < 0xF0 else 4 for b in LEADS}
    for codec in WRONG_DECODINGS
}
CONTINUATION_CHARS = {c: set(CONTINUATIONS.decode(c, errors="ignore")) for c in WRONG_DECODINGS}


@lru_cache(maxsize=65536)
def _shown(seq: str) -> frozenset[str]:
    """The wrong decodings that show a whole UTF-8 sequence at the start of ``seq`` (a lead,
    a continuation and the two characters after them): ``вЂ™`` is one in Windows-1251,
    ``её `` is not."""
    found = set()
    for codec in SIGN_CODECS.get(seq[:2], ()):
        more = SEQUENCE_SIZE[codec][seq[0]] - 2
        tail = seq[2 : 2 + more]
        if len(tail) == more and all(ch in CONTINUATION_CHARS[codec] for ch in tail):
            found.add(codec)
    return frozenset(found)


def codecs_shown(text: str) -> set[str]:
    """The wrong decodings whose signs ``text`` holds: the only ones worth undoing."""
    found: set[str] = set()
    for m in MAYBE_SIGN.finditer(text):
        found.update(_shown(text[m.start() : m.start() + 4]))
    return found


# The wrong decodings whose mojibake ftfy can find inside otherwise good text.
FTFY_DOMAIN = {"sloppy-windows-1252", "latin-1"}

# ftfy fixes the encoding only; everything else it could change is left to clean.py's steps.
FTFY_CONFIG = ftfy.TextFixerConfig(
    unescape_html=False,
    remove_terminal_escapes=False,
    fix_latin_ligatures=False,
    fix_character_width=False,
    uncurl_quotes=False,
    fix_line_breaks=False,
    fix_surrogates=False,
    remove_control_chars=False,
    normalization=None,
    explain=True,
)

# A line must score at least this much before anything replaces it: one odd neighbour
# (``l’être``, ``“ö``) is not evidence enough.
MIN_EVIDENCE = 2

SCRIPT_GROUPS = {"HIRAGANA": "CJK", "KATAKANA": "CJK", "HANGUL": "CJK", "IDEOGRAPHIC": "CJK"}


@lru_cache(maxsize=4096)
def char_class(ch: str) -> str | None:
    """What a character is, for telling improbable neighbours: a letter's script (the first
    word of its Unicode name), the major category of anything else non-ASCII, and None for
    what may sit next to anything (spaces, marks, format characters, ASCII non-letters)."""
    if ch.isascii():
        return "LATIN" if ch.isalpha() else None
    category = unicodedata.category(ch)
    if ch.isspace() or category[0] == "M" or category == "Cf":
        return None
    if category[0] == "L":
        script = unicodedata.name(ch, "?").split()[0]
        return SCRIPT_GROUPS.get(script, script)
    return category[0]


# Where wrong decodings of everyday text land and everyday text hardly goes: Latin Extended-B,
# IPA and modifier letters (but ə Ə ș ț), historic Cyrillic (Ѩ, Қ), Armenian, Hebrew points,
# Syriac to Arabic Extended-A. A soft cost: real text there still wins against its mojibake.
RARE = [(0x0180, 0x02FF), (0x0460, 0x048F), (0x0498, 0x04AF), (0x0500, 0x05CF), (0x0700, 0x08FF)]
COMMON = set("əƏșțȘȚ")


@lru_cache(maxsize=4096)
def oddness(ch: str) -> int:
    """What one character costs: 1 for U+FFFD, C1 controls, private use, unassigned code
    points, modifier letters and the ``RARE`` ranges; 0 otherwise."""
    if ch.isascii():
        return 0  # a repair never adds or removes ASCII
    if ch == "\ufffd" or unicodedata.category(ch) in ("Cc", "Co", "Cn", "Cs", "Lm"):
        return 1
    return int(ch not in COMMON and any(lo <= ord(ch) <= hi for lo, hi in RARE))


@lru_cache(maxsize=4096)
def is_mark(ch: str) -> bool:
    return unicodedata.category(ch)[0] == "M"


NON_ASCII = re.compile(r"[^\x00-\x7f]+")


def implausibility(text: str, limit: int | None = None) -> int:
    """How much ``text`` looks like mojibake; 0 for nearly all correct text.

    The sum of: ftfy's count of known mojibake sequences; each character's ``oddness``; a
    combining mark at the start of a line or after ASCII that is not a letter; neighbours of
    different kinds where one is non-ASCII: 2 for letters of two scripts (one coherent script
    per word), 1 for a letter glued to a symbol (``É™``, ``–ú``) or a lowercase letter before
    an uppercase one (``РїСЂ``). Only runs of non-ASCII characters and their two neighbours are looked at: a
    repair never touches ASCII. With ``limit``, counting stops once the score is over it
    (the caller only asks "is it more than that?")."""
    score = 0
    for m in NON_ASCII.finditer(text):
        if limit is not None and score > limit:
            return score
        start, end = m.span()
        prev = text[start - 1] if start else ""
        prev_class = char_class(prev) if prev else None
        for ch in text[start : end + 1]:
            cls = char_class(ch)
            score += oddness(ch)
            if is_mark(ch) and (not prev or prev.isascii() and not prev.isalpha()):
                score += 1
            if cls and prev_class and not (ch.isascii() and prev.isascii()):
                if cls != prev_class:
                    score += 2 if len(cls) > 1 and len(prev_class) > 1 else 1
                else:
                    score += prev.islower() and ch.isupper()
            prev, prev_class = ch, cls
    return score + badness(text)


def _decode_restoring(data: bytes, dropped: bytes, known: str = "") -> tuple[str, int] | None:
    """``data`` as UTF-8, completing sequences one byte short with one of ``dropped``.

    None when some error is not such a sequence, or no completion decodes. Returns the text
    and how many characters had to become U+FFFD: no single completion that the rest of the
    line, or ``known`` (the letters of the whole document, lowercased), vouches for.
    """
    parts: list[str | set[str]] = []
    pos = 0
    while True:
        try:
            parts.append(data[pos:].decode("utf-8"))
            break
        except UnicodeDecodeError as e:
            start = pos + e.start
            parts.append(data[pos:start].decode("utf-8"))
            lead = data[start]
            size = 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4
            if not dropped or not 0xC2 <= lead <= 0xF4:
                return None
            have = 1
            while (
                have < size - 1 and start + have < len(data) and 0x80 <= data[start + have] < 0xC0
            ):
                have += 1
            if have != size - 1:
                return None
            seq = data[start : start + have]
            trials = (seq[:i] + bytes([b]) + seq[i:] for b in dropped for i in range(1, size))
            options = {t.decode("utf-8", "replace") for t in trials} - {"\ufffd"}
            options = {ch for ch in options if len(ch) == 1}
            if not options:
                return None
            parts.append(options)
            pos = start + have
    known += "".join(p for p in parts if isinstance(p, str)).lower()
    lost = 0
    out = []
    for p in parts:
        if isinstance(p, str):
            out.append(p)
            continue
        vouched = [ch for ch in p if ch.lower() in known]
        if len(vouched) == 1:
            out.append(vouched[0])
        else:
            out.append("\ufffd")
            lost += 1
    return "".join(out), lost


def _undo(line: str, codec: str, known: str = "") -> tuple[str, int] | None:
    """``line`` re-encoded with ``codec`` and decoded as UTF-8; None unless exact."""
    try:
        data = line.encode(codec)
    except UnicodeEncodeError:
        return None
    try:
        return data.decode("utf-8"), 0
    except UnicodeDecodeError:
        return _decode_restoring(data, UNDEFINED[codec], known)


@dataclass
class Candidate:
    """One possible repair of a line: its text, what it undid, characters lost, its score."""

    text: str
    label: str
    lost: int = 0
    score: int = field(default=0, compare=False)


def _trips(line: str, known: str, shown: set[str]) -> list[Candidate]:
    """Every exact reverse trip of the decodings ``shown``, one and two layers deep, each
    text once."""
    found: dict[str, Candidate] = {}
    for codec, name in WRONG_DECODINGS.items():
        if codec not in shown:
            continue
        first = _undo(line, codec, known)
        if first is None or first[0] == line or first[0] in found:
            continue
        found[first[0]] = Candidate(first[0], f"UTF-8 read as {name}", first[1])
        shown_inside = codecs_shown(first[0])
        for codec2, name2 in WRONG_DECODINGS.items():
            if codec2 not in shown_inside:
                continue
            second = _undo(first[0], codec2, known)
            if second is not None and second[0] not in (first[0], line) and second[0] not in found:
                label = f"UTF-8 read as {name2}, then as {name}"
                found[second[0]] = Candidate(second[0], label, first[1] + second[1])
    return list(found.values())


def _ftfy_label(steps: list[tuple[str, str]]) -> str:
    """The report's name for what ftfy undid: the code pages, in the order they were read."""
    names = [WRONG_DECODINGS.get(arg, arg) for action, arg in steps if action == "encode"]
    if not names or any(action == "apply" for action, _ in steps):
        return "mixed mojibake (ftfy)"
    return "UTF-8 read as " + ", then as ".join(reversed(names))


def repair_line(
    line: str,
    known: str = "",
    trusted: frozenset[str] = frozenset(),
    shown: set[str] | None = None,
) -> Candidate | None:
    """The best repair of one line, or None when the line is best left as it is.

    The line must score above ``MIN_EVIDENCE - 1`` and above the repair, except that a repair
    which undoes a decoding in ``trusted`` (one the document's clear cases showed) only has
    to score lower.

    The exact trips come first (cheap: they fail in C at the first error for almost all
    correct text); ftfy, slower, only runs when no trip gives a line that scores 0 and the
    line shows signs of the code pages ftfy can untangle from good text (``FTFY_DOMAIN``)."""
    best = None
    shown = codecs_shown(line) if shown is None else shown
    for c in _trips(line, known, shown):
        c.score = implausibility(c.text, None if best is None else best.score)
        if best is None or c.score < best.score:  # the first of equals: WRONG_DECODINGS order
            best = c
    if (best is None or best.score) and FTFY_DOMAIN & shown and badness(line):
        fixed = ftfy.fix_and_explain(line, FTFY_CONFIG)
        if fixed.text != line:
            c = Candidate(fixed.text, _ftfy_label(fixed.explanation or []))
            c.score = implausibility(c.text)
            best = c if best is None or c.score < best.score else best
    if best is None:
        return None
    bar = best.score if best.label in trusted else max(best.score, MIN_EVIDENCE - 1)
    return best if implausibility(line, bar) > bar else None


@dataclass
class Repair:
    """What ``fix_mojibake`` did: lines repaired per undone decoding, characters lost."""

    lines: dict[str, int] = field(default_factory=dict)
    lost: int = 0


def _sign_lines(text: str) -> dict[tuple[int, int], set[str]]:
    """(start, end) of each line of ``text`` that holds a sign of mojibake, and the wrong
    decodings its signs come from."""
    spans: dict[tuple[int, int], set[str]] = {}
    span, shown = (-1, -1), set()
    for m in MAYBE_SIGN.finditer(text):
        codecs = _shown(text[m.start() : m.start() + 4])
        if not codecs:
            continue
        if m.start() >= span[1]:
            end = text.find("\n", m.start())
            span = (text.rfind("\n", 0, m.start()) + 1, len(text) if end < 0 else end)
            shown = spans[span] = set()
        shown.update(codecs)
    return spans


def fix_mojibake(text: str) -> tuple[str, Repair]:
    """``text`` with each line that holds mojibake repaired; lines without a sign untouched.

    Lines end at ``\\n`` only: U+0085 and the other characters ``str.splitlines`` also
    breaks at are mojibake material."""
    report = Repair()
    if text.isascii():
        return text, report
    spans = _sign_lines(text)
    fixes = {span: repair_line(text[span[0] : span[1]], shown=spans[span]) for span in spans}
    unsure = [span for span, f in fixes.items() if f is None or f.lost or f.score]
    if unsure and len(unsure) < len(fixes):
        # A second look where the first one left doubt, with what the clear cases showed: the
        # document's letters, and the decodings it went through.
        known = "".join({ch for f in fixes.values() if f is not None for ch in f.text.lower()})
        trusted = frozenset(f.label for f in fixes.values() if f is not None and not f.score)
        for span in unsure:
            line = text[span[0] : span[1]]
            fixes[span] = repair_line(line, known, trusted, spans[span]) or fixes[span]
    out, done = [], 0
    for (start, end), fixed in fixes.items():
        if fixed is not None:
            out += [text[done:start], fixed.text]
            done = end
            report.lines[fixed.label] = report.lines.get(fixed.label, 0) + 1
            report.lost += fixed.lost
    return "".join(out) + text[done:] if out else text, report
