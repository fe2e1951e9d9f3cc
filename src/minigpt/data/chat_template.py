"""Chat templates: a conversation becomes text, token ids and a loss mask.

A template is a Jinja2 string over ``messages`` (a list of ``{"role", "content"}``) and
``add_generation_prompt``: the format Hugging Face's ``apply_chat_template`` reads. It is
rendered here with the same Jinja settings transformers uses (a sandboxed environment,
``trim_blocks``, ``lstrip_blocks``, loop controls, ``raise_exception``), so the template
exported into ``tokenizer_config.json`` renders in transformers exactly what minigpt trained on.

The loss mask needs no markers inside the template. For each assistant turn ``i`` the text of
``messages[:i]`` with the generation prompt is a prefix of the text of ``messages[:i + 1]``;
what the turn adds after that prefix (its content and end-of-turn token) is what the model
must learn to write, and is trained on. Each piece is tokenized on its own, so a prompt ends on
a token boundary exactly as it does at inference, when the model continues the prompt.

Special tokens (``<|user|>``, ``<|end|>``, ...) are whole tokens that ordinary text never
produces: ``encode_with_specials`` maps their exact strings in a rendered template to their
ids and encodes everything between them as plain text.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from minigpt.data.tokenizer import Tokenizer
from minigpt.errors import MiniGPTError

ROLES = ("system", "user", "assistant")
END_OF_TURN = "<|end|>"
CHAT_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>", END_OF_TURN)
# Each turn: a role token, the content, the end-of-turn token; nothing between turns.
DEFAULT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>' + message['content'] + '<|end|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
)
TOKEN_LIKE = re.compile(r"<\|[^|<>\s]{1,40}\|>|<\|[^|<>\s]{1,40}\|")
PROBE = [
    {"role": "system", "content": "s"},
    {"role": "user", "content": "u"},
    {"role": "assistant", "content": "a"},
]

Message = dict[str, str]


@functools.cache
def _compiled(source: str) -> Any:
    """The template compiled as transformers compiles chat templates (sandboxed)."""
    import jinja2
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x: Any, ensure_ascii=False, indent=None, separators=None, sort_keys=False) -> str:
        return json.dumps(
            x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
        )

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    try:
        return env.from_string(source)
    except jinja2.exceptions.TemplateSyntaxError as e:
        raise MiniGPTError(f"the chat template is not valid Jinja (line {e.lineno}: {e})") from None


def render(
    source: str,
    messages: Sequence[Message],
    add_generation_prompt: bool = False,
    **variables: Any,
) -> str:
    """The text of ``messages`` under the template ``source``."""
    import jinja2

    try:
        return _compiled(source).render(
            messages=list(messages), add_generation_prompt=add_generation_prompt, **variables
        )
    except jinja2.exceptions.TemplateError as e:
        raise MiniGPTError(f"the chat template failed to render: {e}") from None


def template_tokens(source: str) -> list[str]:
    """The special-token strings a template writes (``<|name|>``): the default template's
    in their usual order, any other's in order of appearance."""
    if source == DEFAULT_TEMPLATE:
        return list(CHAT_TOKENS)
    found = TOKEN_LIKE.findall(source) + TOKEN_LIKE.findall(render(source, PROBE, True))
    return list(dict.fromkeys(t for t in found if t.endswith("|>")))


def check_template(source: str, tok: Tokenizer) -> None:
    """A template may only write special tokens the tokenizer has (else: one line, the fix)."""
    missing = [t for t in template_tokens(source) if t not in tok.special_tokens]
    if missing:
        raise MiniGPTError(
            f"the chat template uses {', '.join(missing)}, which the tokenizer lacks; prepare "
            "the chat dataset with `minigpt prepare --format chat` (it adds them) or fix the "
            "template"
        )


def reply_stop_ids(tok: Tokenizer) -> list[int]:
    """The ids that end a reply: the end-of-turn token first, then end-of-text and every other
    token of the template (a reply never holds a turn marker: one means the turn is over)."""
    names = [END_OF_TURN, "<|endoftext|>"]
    if tok.chat_template is not None:
        names += template_tokens(tok.chat_template)
    specials = tok.special_tokens
    return [specials[t] for t in dict.fromkeys(names) if t in specials]


def encode_with_specials(tok: Tokenizer, text: str) -> list[int]:
    """Ids of ``text`` where the exact strings of the tokenizer's special tokens are those
    tokens; everything else is encoded as ordinary text (which never yields a special)."""
    specials = tok.special_tokens
    if not specials:
        return tok.encode(text)
    pattern = _split_pattern(tuple(sorted(specials, key=len, reverse=True)))
    ids: list[int] = []
    for i, part in enumerate(pattern.split(text)):
        if i % 2:
            ids.append(specials[part])
        elif part:
            ids.extend(tok.encode(part))
    return ids


@functools.cache
def _split_pattern(names: tuple[str, ...]) -> re.Pattern:
    return re.compile("(" + "|".join(map(re.escape, names)) + ")")


def assistant_spans(source: str, messages: Sequence[Message]) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character spans of what each assistant turn adds."""
    full = render(source, messages)
    spans = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt = render(source, messages[:i], add_generation_prompt=True)
        turn = render(source, messages[: i + 1])
        if not (turn.startswith(prompt) and full.startswith(turn)):
            raise MiniGPTError(
                "the chat template does not render a conversation as its turns one after "
                "another (the text up to a reply must be a prefix of the whole); minigpt "
                "cannot tell the replies from the prompts with it"
            )
        spans.append((len(prompt), len(turn)))
    return full, spans


class TokenizedChat(NamedTuple):
    """A conversation as training data."""

    ids: np.ndarray  # token ids (int64)
    mask: np.ndarray  # 1 where the token belongs to a reply: what the model learns to write
    text: str  # the rendered conversation
    reply_ends: list[tuple[int, int]]  # (token index, character index) where each reply ends
    reply_bytes: list[int]  # UTF-8 bytes of each reply's text, special tokens left out


def tokenize_conversation(
    source: str, tok: Tokenizer, messages: Sequence[Message]
) -> TokenizedChat:
    """Render ``messages`` and tokenize them piece by piece, with the loss mask."""
    text, spans = assistant_spans(source, messages)
    cuts = sorted({0, len(text), *(c for span in spans for c in span)})
    ids: list[int] = []
    mask: list[int] = []
    ends: list[tuple[int, int]] = []
    nbytes: list[int] = []
    specials = tuple(sorted(tok.special_tokens, key=len, reverse=True))
    for a, b in zip(cuts, cuts[1:], strict=False):
        piece = encode_with_specials(tok, text[a:b])
        inside = any(s <= a and b <= e for s, e in spans)
        ids += piece
        mask += [int(inside)] * len(piece)
        if inside:
            plain = _split_pattern(specials).sub("", text[a:b]) if specials else text[a:b]
            nbytes.append(len(plain.encode("utf-8")))
            ends.append((len(ids), b))
    return TokenizedChat(
        np.asarray(ids, dtype=np.int64), np.asarray(mask, dtype=np.uint8), text, ends, nbytes
    )
