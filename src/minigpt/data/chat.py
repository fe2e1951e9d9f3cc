"""Reading chat data: jsonl (also .gz/.zst) and parquet records become conversations.

Three common shapes are recognised per record, by which field it has:

- OpenAI ``{"messages": [{"role": "system"|"user"|"assistant", "content": ...}, ...]}``;
- ShareGPT ``{"conversations": [{"from": "human"|"gpt"|"system", "value": ...}, ...]}``;
- Alpaca ``{"instruction", "input"?, "output"|"response", "system"?}``.

Field names can be overridden (``--field instruction=question``), so a dataset with its own
names needs no conversion. Broken records are errors that name the line and the field; records
that are well formed but cannot teach anything (an empty reply, no reply at all) are skipped
and counted, so the report says how much of the input was used.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from minigpt.config import suggest
from minigpt.data.chat_template import Message
from minigpt.data.decode import jsonl_records, open_binary
from minigpt.data.read_notes import FileNotes
from minigpt.data.sources import SourceOptions, file_format
from minigpt.errors import MiniGPTError

ROLE_NAMES = {
    "system": "system",
    "user": "user",
    "human": "user",
    "assistant": "assistant",
    "gpt": "assistant",
    "bot": "assistant",
    "model": "assistant",
}
SKIPS = ("empty_answer", "no_answer")


@dataclass(frozen=True)
class ChatFields:
    """The field names each shape is read with (``--field NAME=FIELD`` changes one)."""

    messages: str = "messages"
    role: str = "role"
    content: str = "content"
    conversations: str = "conversations"
    sharegpt_role: str = "from"
    sharegpt_content: str = "value"
    instruction: str = "instruction"
    input: str = "input"
    output: str = "output"
    response: str = "response"
    system: str = "system"

    @classmethod
    def parse(cls, pairs: Sequence[str]) -> ChatFields:
        """``["instruction=question", ...]`` -> ChatFields with those names changed."""
        names = [f.name for f in fields(cls)]
        changes = {}
        for pair in pairs:
            key, sep, value = pair.partition("=")
            key = key.strip().replace("-", "_")
            if not sep or not value.strip():
                raise MiniGPTError(f"--field expects NAME=FIELD (e.g. output=answer), not {pair!r}")
            if key not in names:
                raise MiniGPTError(
                    f"unknown chat field {key!r}{suggest(key, names)}; known: {', '.join(names)}"
                )
            changes[key] = value.strip()
        return replace(cls(), **changes)


@dataclass
class Conversation:
    """One record: where it came from, its messages, and why it is skipped (or None)."""

    where: str
    messages: list[Message]
    skip: str | None = None


def _text(value: Any, where: str, name: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise MiniGPTError(f"{where}: field {name!r} holds {type(value).__name__}, not text")
    return value


def _turns(record: dict, where: str, key: str, role_key: str, content_key: str) -> list[Message]:
    turns = record[key]
    if not isinstance(turns, list):
        raise MiniGPTError(f"{where}: field {key!r} must be a list of turns, not {turns!r:.40}")
    out = []
    for n, turn in enumerate(turns, 1):
        at = f"{where}: {key}[{n}]"
        if not isinstance(turn, dict):
            raise MiniGPTError(f"{at} is not an object with {role_key!r} and {content_key!r}")
        for name in (role_key, content_key):
            if name not in turn:
                raise MiniGPTError(
                    f"{at} has no field {name!r}{suggest(name, turn)} (fields: "
                    f"{', '.join(map(str, turn))}); rename it with --field"
                )
        role = ROLE_NAMES.get(str(turn[role_key]).strip().lower())
        if role is None:
            raise MiniGPTError(
                f"{at} has unknown role {turn[role_key]!r}; known: {', '.join(ROLE_NAMES)}"
            )
        out.append({"role": role, "content": _text(turn[content_key], at, content_key)})
    return out


def _alpaca(record: dict, where: str, f: ChatFields) -> list[Message]:
    answer_key = f.output if f.output in record else f.response
    if answer_key not in record:
        raise MiniGPTError(
            f"{where} has no field {f.output!r} or {f.response!r} (fields: "
            f"{', '.join(map(str, record))}); name the answer field with --field output=NAME"
        )
    prompt = _text(record[f.instruction], where, f.instruction)
    extra = _text(record.get(f.input), where, f.input)
    if extra.strip():
        prompt = f"{prompt}\n\n{extra}" if prompt.strip() else extra
    messages = []
    system = _text(record.get(f.system), where, f.system)
    if system.strip():
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": prompt})
    messages.append({"role": "assistant", "content": _text(record[answer_key], where, answer_key)})
    return messages


def to_conversation(record: Any, where: str, f: ChatFields = ChatFields()) -> Conversation:
    """One record in any of the three shapes as a conversation (bad input raises)."""
    if not isinstance(record, dict):
        raise MiniGPTError(f"{where} is not a JSON object; each record must be one")
    if f.messages in record:
        messages = _turns(record, where, f.messages, f.role, f.content)
    elif f.conversations in record:
        messages = _turns(record, where, f.conversations, f.sharegpt_role, f.sharegpt_content)
    elif f.instruction in record:
        messages = _alpaca(record, where, f)
    else:
        raise MiniGPTError(
            f"{where} has none of the fields {f.messages!r}, {f.conversations!r} or "
            f"{f.instruction!r} (fields: {', '.join(map(str, record))}); name yours with "
            "--field (e.g. --field messages=dialog)"
        )
    return Conversation(where, messages, skip_reason(messages))


def skip_reason(messages: Sequence[Message]) -> str | None:
    """Why a well-formed conversation teaches nothing (None when it is fine)."""
    replies = [m for m in messages if m["role"] == "assistant"]
    if not replies:
        return "no_answer"
    if any(not m["content"].strip() for m in replies):
        return "empty_answer"
    return None


def _jsonl_records(
    path: Path, compression: str | None, opts: SourceOptions, notes: FileNotes
) -> Iterator[tuple[Any, str]]:
    with open_binary(path, compression) as stream:
        records = jsonl_records(
            stream, path, opts.encoding, opts.errors, opts.skip_bad_lines, notes
        )
        for lineno, record in records:
            yield record, f"{path}:{lineno}"


def _parquet_records(path: Path, compression: str | None, *_: Any) -> Iterator[tuple[Any, str]]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise MiniGPTError(
            f"reading {path} needs pyarrow; pip install 'minigpt[parquet]'"
        ) from None
    try:
        if compression:
            with open_binary(path, compression) as stream:
                pf = pq.ParquetFile(pa.BufferReader(stream.read()))
        else:
            pf = pq.ParquetFile(str(path))
    except (pa.ArrowException, OSError) as e:
        raise MiniGPTError(f"{path} is not a readable parquet file ({e}); check it") from None
    row = 0
    for batch in pf.iter_batches(batch_size=1024):
        for record in batch.to_pylist():
            row += 1
            yield record, f"{path}:row {row}"


def read_conversations(
    files: Sequence[Path],
    chat_fields: ChatFields = ChatFields(),
    opts: SourceOptions | None = None,
) -> Iterator[Conversation]:
    """Every record of every file as a Conversation, in order. jsonl is decoded as plain
    prepare decodes it (``opts.encoding``, ``opts.errors``); lines that are not JSON stop with
    an error naming the line, or with ``opts.skip_bad_lines`` are counted in ``opts.notes``."""
    opts = opts or SourceOptions()
    notes = opts.notes
    for path in files:
        notes.check_unchanged(path)
        file_notes = notes.files[str(path)] = FileNotes()
        kind, compression = file_format(path)
        if kind == "text":
            raise MiniGPTError(
                f"{path} is not jsonl or parquet; chat data is one conversation per jsonl line "
                "(or parquet row)"
            )
        reader = _parquet_records if kind == "parquet" else _jsonl_records
        for record, where in reader(path, compression, opts, file_notes):
            yield to_conversation(record, where, chat_fields)
        notes.check_unchanged(path)
