"""A ~1 MB Azerbaijani corpus like issue 19's: templated stories, then a tail of fluent text.

The stories come from a handful of sentence templates filled from short word lists, so they
are very repetitive (a BPE vocabulary learns whole phrases of them); the tail is fluent
text: ``examples/az/hekayeler.txt`` (112 KB of Azerbaijani written for minigpt: stories,
dialogues, tales, explanations), a few instruction answers written for this benchmark, and
the four course days of ``shared/seeds`` (repaired from their Windows-1252 mojibake here, so
the corpus does not depend on prepare's repair). With ``--split tail`` the validation split
(the last 10%) is fluent text, as in the issue, and training holds some of it too.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

# shared/seeds sits next to the checkout (or a level above, from a worktree)
SEEDS = next(
    (
        p / "shared" / "seeds"
        for p in Path(__file__).resolve().parents
        if (p / "shared" / "seeds").is_dir()
    ),
    Path("shared/seeds"),
)

NAMES = ["Əli", "Leyla", "Murad", "Aysel", "Tural", "Nigar", "Elvin", "Günay", "Rəşad", "Səbinə"]
PLACES = ["bazara", "məktəbə", "parka", "dənizin sahilinə", "nənəsinin evinə", "meşəyə"]
THINGS = ["bir pişik", "qırmızı bir top", "köhnə bir kitab", "kiçik bir quş", "bir alma ağacı"]
FEELINGS = ["çox sevindi", "təəccübləndi", "bir az qorxdu", "gülümsədi", "düşüncəyə daldı"]
TIMES = ["Bir gün", "Səhər tezdən", "Axşamüstü", "Yağışlı bir gündə", "Bayram günü"]
ENDINGS = [
    "Axşam evə qayıdanda hər şeyi anasına danışdı.",
    "O gündən sonra {name} bu yeri heç unutmadı.",
    "Sonra dostları ilə birlikdə çay içdilər.",
    "{name} başa düşdü ki, dostluq hər şeydən dəyərlidir.",
]
TEMPLATES = [
    "{time} {name} {place} getdi. Orada {thing} gördü və {feeling}.",
    "{name} yolda {thing} tapdı. {name} {feeling}, çünki belə şeyi əvvəllər görməmişdi.",
    "{name} dostu {other} ilə {place} getdi. Onlar {thing} gördülər və {feeling}.",
    "{other} {name}-ə dedi: «Gəl, {place} gedək.» {name} razılaşdı.",
]

ANSWERS = """Sual: Süni intellekt nədir?
Cavab: Süni intellekt kompüterlərin insan kimi düşünməsini, öyrənməsini və qərar verməsini
təmin edən elm sahəsidir. Məsələn, dil modelləri mətnin davamını proqnozlaşdırmağı öyrənir.

Sual: Tokenizator nə üçün lazımdır?
Cavab: Model mətni birbaşa oxuya bilmir; tokenizator mətni ədədlərə çevirir. Simvol
səviyyəli tokenizator hər hərfə bir ədəd verir, BPE isə tez-tez birlikdə gələn hissələri
birləşdirir. Lüğət kiçik korpus üçün çox böyük olarsa, model nadir tokenləri əzbərləyir.

Sual: Öyrənmə sürəti (learning rate) çox yüksək olsa nə baş verir?
Cavab: İtki (loss) azalmaq əvəzinə sıçrayır və bəzən sonsuzluğa qədər böyüyür. Belə
halda öyrənmə sürətini iki-üç dəfə azaltmaq və isinmə (warm-up) addımlarını artırmaq olar.

Sual: Yoxlama dəsti nəyə görə ayrıca saxlanılır?
Cavab: Model yalnız təlim mətnini əzbərləyə bilər. Heç vaxt görmədiyi mətndə ölçülən
itki modelin həqiqətən ümumiləşdirib-ümumiləşdirmədiyini göstərir.

Sual: Bayt başına bit nə deməkdir?
Cavab: Bu, modelin mətnin hər baytını kodlamaq üçün orta hesabla neçə bit sərf etdiyini
göstərir. Tokenizatordan asılı olmadığı üçün simvol və BPE modellərini ədalətlə müqayisə
etməyə imkan verir.
"""


def _repair(text: str) -> str:
    """Undo UTF-8 read as Windows-1252; bytes the mojibake lost (Ə's 0x8F, some emoji) are
    restored where unambiguous (Ə) and dropped otherwise."""
    text = text.replace("Æ", "Æ\x8f")
    raw = bytearray()
    for ch in text:
        try:
            raw += ch.encode("cp1252")
        except UnicodeEncodeError:
            raw += bytes([ord(ch)]) if ord(ch) < 256 else ch.encode("utf-8")
    return raw.decode("utf-8", errors="replace").replace("\ufffd", "")


def stories(total_bytes: int, rng: random.Random) -> list[str]:
    out, size = [], 0
    while size < total_bytes:
        name, other = rng.sample(NAMES, 2)
        words = dict(name=name, other=other)
        sentences = []
        for _ in range(rng.randint(3, 6)):
            template = rng.choice(TEMPLATES)
            sentences.append(
                template.format(
                    time=rng.choice(TIMES),
                    place=rng.choice(PLACES),
                    thing=rng.choice(THINGS),
                    feeling=rng.choice(FEELINGS),
                    **words,
                )
            )
        sentences.append(rng.choice(ENDINGS).format(**words))
        story = " ".join(sentences)
        out.append(story)
        size += len(story.encode("utf-8")) + 2
    return out


def seed_texts() -> list[str]:
    return [_repair(p.read_text(encoding="utf-8")) for p in sorted(SEEDS.glob("course-*.txt"))]


SAMPLE = Path(__file__).resolve().parents[1] / "examples" / "az" / "hekayeler.txt"


def sample_text() -> str:
    """The Azerbaijani sample corpus without its comment header."""
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    return "\n".join(line for line in lines if not line.startswith("#")).strip()


def answers(total_bytes: int, rng: random.Random, texts: list[str]) -> list[str]:
    """Question-and-answer documents whose words are drawn from the seeds' own words, by
    their frequency: real Azerbaijani word forms in an order no template repeats (there is
    not enough real text here to fill a tail of ~100 KB)."""
    import re

    words = re.findall(r"\w+", " ".join(texts).lower())
    out, size = [], 0

    def sentence(n: int) -> str:
        text = " ".join(rng.choice(words) for _ in range(n))
        return text[0].upper() + text[1:]

    while size < total_bytes:
        question = sentence(rng.randint(4, 9)) + "?"
        body = " ".join(
            sentence(rng.randint(6, 15)) + rng.choice(".,;!") for _ in range(rng.randint(2, 6))
        )
        doc = f"Sual: {question}\nCavab: {body.rstrip(',;')}."
        out.append(doc)
        size += len(doc.encode("utf-8")) + 2
    return out


def fluent_tail(answer_bytes: int, rng: random.Random) -> list[str]:
    """Real text; ``answer_bytes`` > 0 adds word-salad answers (the first version of this
    benchmark, before the sample corpus existed) in front."""
    texts = seed_texts()
    salad = answers(answer_bytes, rng, texts) if answer_bytes else []
    return [*salad, sample_text(), ANSWERS, *texts]


def build(
    path: Path, story_bytes: int = 880_000, answer_bytes: int = 0, seed: int = 0
) -> tuple[int, int]:
    """Write the corpus (one file, documents separated by blank lines); returns
    (story bytes, tail bytes)."""
    rng = random.Random(seed)
    head = "\n\n".join(stories(story_bytes, rng))
    tail = "\n\n".join(fluent_tail(answer_bytes, rng))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(head + "\n\n" + tail + "\n", encoding="utf-8")
    return len(head.encode("utf-8")), len(tail.encode("utf-8"))


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("out", type=Path)
    p.add_argument("--story-bytes", type=int, default=880_000)
    p.add_argument("--answer-bytes", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    head_bytes, tail_bytes = build(a.out, a.story_bytes, a.answer_bytes, a.seed)
    print(f"{a.out}: {head_bytes:,} bytes of stories + {tail_bytes:,} bytes of fluent tail")
