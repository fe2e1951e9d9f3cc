import pytest

from minigpt.data.clean import CleanConfig, clean_text
from minigpt.data.mojibake import fix_mojibake

ALL_ON = CleanConfig()

# UTF-8 text that was decoded with the wrong code page, as it arrives in real course material.
MOJIBAKE = [
    ("GÃ¼n", "Gün"),  # latin-1
    ("tÉ™lim", "təlim"),  # cp1252
    ("AzÉ™rbaycan dilindÉ™ tÉ™lim", "Azərbaycan dilində təlim"),
    ("AÄ\x9f gÃ¶l Ã§ox Å\x9fÉ\x99n", "Ağ göl çox şən"),  # latin-1 with C1 bytes
    ("ÐŸÑ€Ð¸Ð²ÐµÑ‚, Ð¼Ð¸Ñ€", "Привет, мир"),  # Cyrillic through cp1252
    ("G√ºn", "Gün"),  # MacRoman
    ("It’s â€œquotedâ€\x9d", "It’s “quoted”"),
]

CLEAN = ["Gün təlim İş ğ ç ö ü ı ə", "café crème", "Привет, мир", "日本語 😀", "Ôü", "plain ascii"]


@pytest.mark.parametrize(("broken", "fixed"), MOJIBAKE)
def test_mojibake_is_repaired(broken, fixed):
    text, counts = clean_text(broken, ALL_ON)
    assert text == fixed
    assert counts["mojibake_fixed"] == 1


@pytest.mark.parametrize("text", CLEAN)
def test_clean_text_is_left_alone(text):
    assert clean_text(text, ALL_ON) == (
        text,
        {"mojibake_fixed": 0, "control_chars_removed": 0},
    )


def test_mojibake_repair_can_be_switched_off():
    text, counts = clean_text("GÃ¼n", CleanConfig(fix_mojibake=False))
    assert text == "GÃ¼n" and "mojibake_fixed" not in counts


def test_control_characters_are_removed_and_counted():
    text, counts = clean_text("a\x00b\x07c\td\ne\r\n\x1b[0m\x7f\x85", ALL_ON)
    assert text == "abc\td\ne\r\n[0m"  # tab, newline and carriage return stay
    assert counts["control_chars_removed"] == 5
    kept, counts = clean_text("a\x00b", CleanConfig(control_chars=False))
    assert kept == "a\x00b" and "control_chars_removed" not in counts


def test_nfc_normalisation():
    text, counts = clean_text("e\u0301 and A\u030a", ALL_ON)
    assert text == "é and Å" and counts["nfc_changed"] == 1
    text, counts = clean_text("e\u0301", CleanConfig(nfc=False))
    assert text == "e\u0301" and "nfc_changed" not in counts


def test_quotes_widths_and_line_breaks_are_not_touched():
    text = "“curly” ｆｕｌｌ ﬁ line\r\nbreak &amp;"
    assert fix_mojibake(text)[0] == text
