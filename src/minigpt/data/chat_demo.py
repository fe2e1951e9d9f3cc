"""A small instruction set that ships with Python, for ``minigpt demo --chat``.

The standard library's help topics (``pydoc_data.topics``) each open with a title and a first
sentence of prose. Each topic becomes a few questions ("What is the "for" statement?", asked in
several ways) answered by that sentence, cut to a length a tiny CPU model can learn, plus some
two-question conversations. No network, the same set on every machine.
"""

from __future__ import annotations

import keyword
import re

QUESTIONS = (
    "What is {title}?",
    "Tell me about {title}.",
    "Explain {title}, please.",
    "What does {key} mean in Python?",
)
ANSWER_CHARS = 70


def _title(text: str) -> str:
    title = text.strip().split("\n", 1)[0].strip()
    return title[0].lower() + title[1:] if title.startswith(("The ", "A ")) else title


def _answer(text: str) -> str | None:
    """The first sentence of prose (grammar lines and headings skipped), cut at a word."""
    body = text.strip().split("\n")[2:]
    prose = " ".join(
        line.strip()
        for line in body
        if line.strip() and "::=" not in line and not set(line.strip()) <= set("*=-")
    )
    sentence = re.split(r"(?<=[.:])\s", prose, maxsplit=1)[0].rstrip(":") if prose else ""
    if len(sentence) < 20 or not re.match(r'[A-Z"*]', sentence) or "**" in sentence:
        return None
    if len(sentence) > ANSWER_CHARS:
        sentence = sentence[:ANSWER_CHARS].rsplit(" ", 1)[0].rstrip(",;") + "..."
    return sentence if sentence.endswith((".", "...")) else sentence + "."


def demo_topics() -> list[tuple[str, str, str]]:
    """(key, title, answer) for every help topic with a usable first sentence, sorted."""
    from pydoc_data.topics import topics

    out, seen = [], set()
    for key in sorted(topics):
        answer = _answer(topics[key])
        if answer is not None and answer not in seen:  # "else" and "if" share a topic
            seen.add(answer)
            out.append((key, _title(topics[key]), answer))
    return out


def demo_conversation(records: list[dict], key: str) -> list[dict[str, str]]:
    """The two-question conversation of the set that starts with topic ``key``."""
    title = next(t for k, t, _ in demo_topics() if k == key)
    first = QUESTIONS[0].format(title=title, key=key)
    for record in records:
        messages = record["messages"]
        if len(messages) == 4 and messages[0]["content"] == first:
            return messages
    raise KeyError(key)


def demo_conversations() -> list[dict]:
    """OpenAI-shape records: one per topic and question form, then two-topic conversations."""
    topics = demo_topics()
    records = []
    for n, (key, title, answer) in enumerate(topics):
        for q in QUESTIONS if keyword.iskeyword(key) else QUESTIONS[:-1]:
            question = q.format(title=title, key=f'"{key}"')
            records.append(
                {
                    "messages": [
                        {"role": "user", "content": question},
                        {"role": "assistant", "content": answer},
                    ]
                }
            )
        key2, title2, answer2 = topics[(n * 7 + 3) % len(topics)]
        records.append(
            {
                "messages": [
                    {"role": "user", "content": QUESTIONS[0].format(title=title, key=key)},
                    {"role": "assistant", "content": answer},
                    {"role": "user", "content": QUESTIONS[1].format(title=title2, key=key2)},
                    {"role": "assistant", "content": answer2},
                ]
            }
        )
    return records
