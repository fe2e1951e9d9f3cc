"""Chat messages -> the prompt a model continues, for ``/v1/chat/completions``.

``render_chat`` is the one place that turns OpenAI-style messages into token ids. A model
tuned on conversations carries a chat template with its tokenizer (see the fine-tuning
issue); one without a template (any model pretrained on plain text) gets plain text turns:

    System: You are terse.
    User: Hello
    Assistant:

and its reply stops where it starts writing the user's next turn (``"\\nUser:"``). A plain
language model has never seen this layout, so its replies are continuations of a document
that looks like a dialogue, which is what docs/serve.md says.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from minigpt.data.tokenizer import Tokenizer
from minigpt.errors import MiniGPTError
from minigpt.inference.generate import prompt_ids

ROLES = {"system": "System", "user": "User", "assistant": "Assistant"}


@dataclass(frozen=True)
class ChatPrompt:
    """The prompt's token ids, and what ends the reply: stop strings and stop token ids."""

    ids: list[int]
    stop: tuple[str, ...] = ()
    stop_ids: tuple[int, ...] = ()
    templated: bool = False


def check_messages(messages: Sequence[dict]) -> list[dict[str, str]]:
    """Roles system/user/assistant with string content; one line naming what is wrong."""
    if not messages:
        raise MiniGPTError("messages must hold at least one message")
    checked = []
    for i, m in enumerate(messages):
        role, content = m.get("role"), m.get("content")
        if role not in ROLES:
            raise MiniGPTError(f"messages[{i}].role must be one of {sorted(ROLES)}, got {role!r}")
        if not isinstance(content, str):
            raise MiniGPTError(f"messages[{i}].content must be a string")
        checked.append({"role": role, "content": content})
    return checked


def plain_turns(messages: Sequence[dict[str, str]]) -> str:
    """Messages as ``Role: content`` lines, ending with the assistant's open turn."""
    lines = [f"{ROLES[m['role']]}: {m['content']}" for m in messages]
    return "\n".join([*lines, "Assistant:"])


def render_chat(tokenizer: Tokenizer, messages: Sequence[dict]) -> ChatPrompt:
    """The prompt for the assistant's next turn after ``messages``.

    Models with a chat template plug in here (``tokenizer.chat_template``); until then every
    model gets plain text turns.
    """
    messages = check_messages(messages)
    return ChatPrompt(prompt_ids(tokenizer, plain_turns(messages)), stop=("\nUser:",))
