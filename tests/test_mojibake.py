"""Mojibake repair: the seed texts come back, every wrong decoding is undone, correct text is
never touched."""

from __future__ import annotations

from pathlib import Path

import ftfy.bad_codecs  # noqa: F401  (the sloppy-windows-* codecs)
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minigpt.cli import main
from minigpt.data.mojibake import fix_mojibake, implausibility
from minigpt.data.tokenizer import load_tokenizer
from tests.shared_data import SHARED_ENV, shared_folder
from tests.test_prepare import read_split

SEEDS = (shared_folder() or Path("shared")) / "seeds"
AZ_LETTERS = "əıİşğçöü"
# What the wrong decodings leave in Azerbaijani and Russian text.
MARKERS = ["Ã", "É™", "Ä±", "Ä°", "Å", "Æ", "ğŸ", "–ú", "—Ä", "√", "\uf8ff"]

SEED_TEXTS = {
    "course-day13-nanogpt.txt": [
        "# 📚 50 Gündə Süni-İntellekt: Gün 13",
        "## NanoGPT-yə Giriş: Sadəlikdəki Güc 💡",
        "mexanizmi istifadə edən və bizim 100M parametreli modelimizin əsasını təşkil edən",
        "**Sabah görüşənədək!** 👋",
    ],
    "course-day18-params-memory.txt": [
        "## Parametr Sayının Hesablanması: Modelin Ölçüsü \ufffd",  # the emoji lost a byte
        "**2. İrəli Ötürmə Şəbəkəsi (`mlp`):**",  # Ş (C5 9E): 9E was dropped, ş restores it
    ],
    "course-day21-training.txt": [
        "## Təlim Prosesinə Giriş: Model Necə Öyrənir? \ufffd",
        "İkinci mərhələni tamamladıq",
    ],
    "course-day38-hparam-tuning.txt": [
        "## Modelin Təkmilləşdirilməsi: Hiperparametr Tənzimlənməsi 🔧",
        "| 1 (Əsas) |",  # Ə (C6 8F): 8F was dropped, ə elsewhere vouches for it
        "Yaxşı başlanğıc",
        "Əgər",
    ],
    "readme-mini-gpt-ru.txt": [
        "🧠 Mini GPT from Scratch",
        "Минимальная реализация модели GPT на PyTorch без лишних библиотек.",
        "📦 Возможности",
    ],
}


def seed(name: str) -> str:
    path = SEEDS / name
    if not path.is_file():
        pytest.skip(f"seed texts not found at {SEEDS}; set {SHARED_ENV} to the shared folder")
    return path.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", SEED_TEXTS)
def test_seed_texts_come_back_as_their_real_text(name):
    raw = seed(name)
    fixed, report = fix_mojibake(raw)
    for real in SEED_TEXTS[name]:
        assert real in fixed
    for marker in MARKERS:
        assert marker not in fixed, marker
    if name.startswith("course"):
        assert set(AZ_LETTERS) <= set(fixed)
        assert set(report.lines) <= {"UTF-8 read as Windows-1252", "UTF-8 read as Windows-1254"}
    else:
        changed = sum(a != b for a, b in zip(raw.split("\n"), fixed.split("\n"), strict=True))
        assert report.lines == {"UTF-8 read as Mac Roman": changed} and changed > 30
    assert fixed.count("\ufffd") == report.lost <= 1
    assert fix_mojibake(fixed)[0] == fixed  # repaired text is correct text: left alone


# Correct text in the languages minigpt's users write, and what sits around it (words by spaces).
WORDS = {
    "az": "Azərbaycan dilində təlim üçün məlumat İş ğ Şəki Gəncə öyrəndik Əsas sərgüzəşt "
    "çağırış qızıl ölkə Ümumi ıslaq",
    "ru": "Минимальная реализация модели без лишних библиотек ещё всё Ёлка Съезд объём "
    "«цитата» Интернет подъезд ЧАСТЬ Щука эхо",
    "tr": "Türkçe ığdır şişli Çağrı görüşürüz İstanbul üzüm öğretmen",
    "de": "Größe Übergrößenträger Straße äußerst Maß für Öl Ärger schön",
    "fr": "déjà Ça va «guillemets» crème brûlée naïve où Œuvre",
    "cjk": "日本語のテキスト 中文文本 한국어 텍스트 カタカナ 漢字、句読点。",
    "emoji": "😀 👍🏽 🧠 📦 👨‍👩‍👧 🇦🇿 ❤️ ✨",
    "math": "∀x∈ℝ: x²≥0 ± ≤ ≥ π ∑ √2 ∞ ∂f/∂x ½ ¼ ° µm ×10³ → ⇒ ≈ ≠",
    "misc": "— – “quoted” ‘single’ … • © ® ™ € £ ¥ § ¶ # 12,5% (a) [b] x_y",
}
ALPHABETS = {
    "az": "abcçdeəfgğhxıijkqlmnoöprsştuüvyzABCÇDEƏFGĞHXIİJKQLMNOÖPRSŞTUÜVYZ",
    "ru": "абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ",
    "de": "abcdefghijklmnopqrstuvwxyzäöüßÄÖÜ",
    "cjk": "日本語中文漢字のテキスト한국어",
}
word = st.one_of(
    *(st.sampled_from(w.split()) for w in WORDS.values()),
    *(st.text(alphabet=a, min_size=1, max_size=12) for a in ALPHABETS.values()),
)
separator = st.sampled_from([" ", " ", " ", "\n", ", ", ". ", ": ", " — ", "\n\n", "\t"])
correct_text = st.lists(st.tuples(word, separator), min_size=1, max_size=40).map(
    lambda pairs: "".join(w + s for w, s in pairs)
)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(text=correct_text)
def test_correct_multilingual_text_passes_through_unchanged(text):
    fixed, report = fix_mojibake(text)
    assert fixed == text
    assert not report.lines


REAL = [
    "Azərbaycan dilində təlim: Şəki, Gəncə, İsmayıllı, öyrəndik, çağırış, Ümumi.",
    "Минимальная реализация модели GPT на PyTorch без лишних библиотек, ещё и всё.",
    "Größere Übergrößen: äußerst schön, für Öl und Ärger.",
    "Türkçe: ığdır, şişli, Çağrı, görüşürüz, İstanbul.",
    "Emoji 🧠📦 and math ∑ x² ≥ 0 — “quoted” text…",
]
WRONG = ["cp1252", "latin-1", "cp1254", "mac_roman", "cp1251", "koi8_r", "cp437"]
NAMES = ["Windows-1252", "Latin-1", "Windows-1254", "Mac Roman", "Windows-1251", "KOI8-R", "CP437"]


def misread(text: str, codec: str, errors: str = "sloppy") -> str:
    """``text`` saved as UTF-8 and opened as ``codec``. Bytes a Windows code page cannot show
    become U+0080..U+009F (``sloppy``, as browsers and many editors do) or are dropped
    (``ignore``: lost, unless the rest of the text tells which they were)."""
    if errors == "sloppy" and codec.startswith("cp125"):
        codec, errors = f"sloppy-windows-{codec[2:]}", "strict"
    return text.encode("utf-8").decode(codec, errors=errors)


@pytest.mark.parametrize("real", REAL)
@pytest.mark.parametrize(("codec", "name"), list(zip(WRONG, NAMES, strict=True)))
def test_each_wrong_decoding_is_undone(codec, name, real):
    broken = misread(real, codec)
    assert broken != real
    fixed, report = fix_mojibake(broken)
    assert fixed == real
    assert report.lines == {f"UTF-8 read as {name}": 1} or codec in ("cp1252", "cp1254")


@pytest.mark.parametrize("real", REAL[:2])
@pytest.mark.parametrize(
    ("first", "second"),
    [("cp1252", "mac_roman"), ("mac_roman", "cp1252"), ("latin-1", "cp1252"), ("cp1251", "koi8_r")],
)
def test_two_layers_deep(first, second, real):
    broken = misread(misread(real, first), second)
    fixed, report = fix_mojibake(broken)
    assert fixed == real
    assert sum(report.lines.values()) == 1


def test_only_the_broken_lines_change_and_are_counted():
    good = "Gündə təlim.\nПривет, мир.\n"
    broken = misread("Минимальная реализация\n", "mac_roman")
    fixed, report = fix_mojibake(good + broken + good)
    assert fixed == good + "Минимальная реализация\n" + good
    assert report.lines == {"UTF-8 read as Mac Roman": 1} and report.lost == 0


def test_a_dropped_byte_is_restored_only_when_the_text_vouches_for_it():
    # Ə is C6 8F in UTF-8; a strict Windows-1252 decoder drops 0x8F: "Æsas".
    assert fix_mojibake(misread("Əsas: tədris ən əsas işdir.", "cp1252", "ignore"))[0] == (
        "Əsas: tədris ən əsas işdir."
    )
    # 📝 is F0 9F 93 9D; the 0x9D is gone, nothing says which emoji it was.
    fixed, report = fix_mojibake(misread("Qeydlər 📝 və Öyrənmə", "cp1252", "ignore"))
    assert fixed == "Qeydlər \ufffd və Öyrənmə" and report.lost == 1


def test_scorer_prefers_real_text():
    assert [implausibility(real) for real in REAL[:4]] == [0, 0, 0, 0]  # letters only
    for real in REAL:
        for codec in WRONG:
            assert implausibility(misread(real, codec)) > implausibility(real)


def test_prepare_reports_the_repair(tmp_path, capsys):
    raw = seed("readme-mini-gpt-ru.txt")
    out = tmp_path / "ds"
    code = main(["prepare", str(SEEDS / "readme-mini-gpt-ru.txt"), "--out", str(out)])
    stdout = capsys.readouterr().out
    lines = sum(
        a != b for a, b in zip(raw.split("\n"), fix_mojibake(raw)[0].split("\n"), strict=True)
    )
    assert code == 0
    assert f"mojibake: {lines} lines repaired (UTF-8 read as Mac Roman)" in stdout
    tok = load_tokenizer(out)
    text = tok.decode(read_split(out, "train").tolist())
    assert text.startswith("🧠 Mini GPT from Scratch\nМинимальная реализация модели GPT")
    assert "–ú" not in text and "√" not in text
