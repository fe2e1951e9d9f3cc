"""Replies from a chat-tuned model: messages in, the assistant's next turn out.

The messages are rendered with the model's chat template (the one it was tuned with) and a
generation prompt, so the model continues exactly where its training replies began; the reply
ends at the end-of-turn token. When the conversation outgrows the model's block, the oldest
turns are dropped (a system message is always kept), a whole exchange at a time, until the
prompt leaves room for the reply. ``minigpt chat``, the Python API and the server's
``/v1/chat/completions`` all go through here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from minigpt.config.sampling import SampleConfig
from minigpt.data.chat_template import Message, reply_stop_ids
from minigpt.data.tokenizer import Tokenizer
from minigpt.errors import MiniGPTError
from minigpt.inference.chat_format import check_messages, template_ids
from minigpt.inference.generate import TextStream, make_generator, token_steps
from minigpt.model import GPT


def trim_history(messages: Sequence[Message], fits: Any) -> tuple[list[Message], int]:
    """The newest messages for which ``fits(messages)`` holds, dropping the oldest exchanges
    (system messages stay); also how many messages were dropped."""
    messages = list(messages)
    system = [m for m in messages if m["role"] == "system"]
    rest = [m for m in messages if m["role"] != "system"]
    dropped = 0
    while not fits(system + rest):
        if len(rest) <= 1:
            raise MiniGPTError(
                "the last message alone does not fit in the model's block with room for a "
                "reply; shorten it or ask for fewer --max-new-tokens"
            )
        cut = 1  # drop the oldest message and what answers it, up to the next user turn
        while cut < len(rest) - 1 and rest[cut]["role"] != "user":
            cut += 1
        rest, dropped = rest[cut:], dropped + cut
    return system + rest, dropped


def chat_prompt_ids(
    tokenizer: Tokenizer, messages: Sequence[Message], block_size: int, reply_room: int
) -> tuple[list[int], int]:
    """Token ids of the prompt for the next reply, trimmed to leave ``reply_room`` tokens of
    the block free; and the number of messages trimmed."""
    messages = check_messages(list(messages))
    room = block_size - min(reply_room, block_size // 2)
    kept, dropped = trim_history(messages, lambda ms: len(template_ids(tokenizer, ms)) <= room)
    return template_ids(tokenizer, kept), dropped


@dataclass
class ChatReply:
    """One reply: its text, why it ended (``stop``: end of turn or a stop string; ``length``:
    ``max_new_tokens``), token counts, and how many old messages were left out."""

    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    trimmed_messages: int = 0


def stream_chat(
    model: GPT,
    tokenizer: Tokenizer,
    messages: Sequence[Message],
    config: SampleConfig | None = None,
    generator: torch.Generator | None = None,
) -> Iterator[str | ChatReply]:
    """Yield the reply's text pieces as they come, then the finished ``ChatReply``."""
    config = dataclasses.replace(config or SampleConfig(), num_samples=1)
    config.validate(model.config.block_size)
    block = model.config.block_size
    ids, trimmed = chat_prompt_ids(tokenizer, messages, block, config.max_new_tokens)
    if max(ids) >= model.config.vocab_size:
        raise MiniGPTError(
            f"the prompt has token id {max(ids)} but the model knows {model.config.vocab_size}; "
            "use the tokenizer the model was tuned with"
        )
    device = next(model.parameters()).device
    generator = generator or make_generator(device, config.seed)
    stream = TextStream(tokenizer, config.stop, reply_stop_ids(tokenizer))
    idx = torch.tensor([ids], dtype=torch.long, device=device)
    steps = token_steps(model, idx, config, generator, tokenizer)
    text, count = "", 0
    for next_id in steps:
        count += 1
        piece = stream.push(int(next_id[0, 0]))
        if piece:
            text += piece
            yield piece
        if stream.done:
            break
    stopped = stream.done
    piece = stream.finish()
    if piece:
        text += piece
        yield piece
    yield ChatReply(text, "stop" if stopped else "length", len(ids), count, trimmed)


def chat_completion(
    model: GPT,
    tokenizer: Tokenizer,
    messages: Sequence[Message],
    config: SampleConfig | None = None,
    **settings: Any,
) -> ChatReply:
    """The assistant's reply to ``messages`` (``[{"role": "user", "content": "..."}]``).

    ``settings`` override ``SampleConfig`` fields, e.g. ``temperature=0, max_new_tokens=100``.
    """
    config = dataclasses.replace(config or SampleConfig(), **settings)
    for item in stream_chat(model, tokenizer, messages, config):
        if isinstance(item, ChatReply):
            return item
    raise AssertionError("stream_chat ends with its reply")  # pragma: no cover
