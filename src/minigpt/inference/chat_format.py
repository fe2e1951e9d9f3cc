"""Chat messages -> the prompt a model continues, for ``/v1/chat/completions``.

``render_chat`` is the one place that turns OpenAI-style messages into token ids. A model
tuned on conversations carries a chat template with its tokenizer (docs/sft.md): the messages
are rendered with it, as in training, and the reply ends at a turn token (``template_ids``,
which ``chat_completion.py`` uses too). One without a template (any model pretrained on plain
text) gets plain text turns:

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

from minigpt.data.chat_template import check_template, encode_with_specials, render, reply_stop_ids
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


def template_ids(tokenizer: Tokenizer, messages: Sequence[dict[str, str]]) -> list[int]:
    """Ids of ``messages`` rendered with the tokenizer's chat template and the generation
    prompt: what the model was tuned to continue with a reply."""
    template = tokenizer.chat_template
    if template is None:
        raise MiniGPTError(
            "this model has no chat template (it was not tuned on conversations); tune it with "
            "`minigpt prepare --format chat` and `minigpt train --preset sft --init-from RUN`"
        )
    check_template(template, tokenizer)
    return encode_with_specials(tokenizer, render(template, messages, add_generation_prompt=True))


def render_chat(tokenizer: Tokenizer, messages: Sequence[dict]) -> ChatPrompt:
    """The prompt for the assistant's next turn after ``messages``: with the model's chat
    template when it has one, else as plain text turns."""
    messages = check_messages(messages)
    if tokenizer.chat_template is not None:
        stop_ids = tuple(reply_stop_ids(tokenizer))
        return ChatPrompt(template_ids(tokenizer, messages), stop_ids=stop_ids, templated=True)
    return ChatPrompt(prompt_ids(tokenizer, plain_turns(messages)), stop=("\nUser:",))
