"""Text generation from a trained model: settings, streaming decode, stop strings, batches.

``model.generate_tokens`` (model.py) produces token ids with a KV cache and the controls of
generation.py; this module turns them into text. The public entry points are ``stream_text``
(a generator of text pieces, for notebooks and the CLI), ``generate_samples`` (several
samples as one batch) and ``generate_text`` (one sample as a string).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

from minigpt.config.sampling import SampleConfig
from minigpt.data.tokenizer import Tokenizer
from minigpt.errors import MiniGPTError
from minigpt.inference.memory import check_generation, element_size
from minigpt.model import GPT


def prompt_ids(tokenizer: Tokenizer, prompt: str) -> list[int]:
    """Encode the prompt; an empty prompt starts from the end-of-document token or a newline."""
    ids = tokenizer.encode(prompt) if prompt else []
    if ids:
        return ids
    if tokenizer.eot_id is not None:
        return [tokenizer.eot_id]
    try:
        return tokenizer.encode("\n") or [0]
    except MiniGPTError:
        return [0]


class StreamDecoder:
    """Turns token ids, one at a time, into text pieces, holding back incomplete characters.

    A byte-level BPE token can end in the middle of a multi-byte UTF-8 character, which then
    decodes to U+FFFD until the rest of its bytes arrive. Re-decoding everything after each
    token would be O(n^2); instead only a small window is decoded: the ids since the text
    last ended on a whole character. Trailing U+FFFD is held back while the window may still
    complete it; a window that grows past ``max_window`` ids (invalid bytes that never
    complete) is emitted as it is.
    """

    def __init__(self, tokenizer: Tokenizer, max_window: int = 16) -> None:
        self.tokenizer = tokenizer
        self.max_window = max_window
        self.window: list[int] = []
        self.emitted = 0  # characters of the window's text already returned

    def push(self, token_id: int) -> str:
        self.window.append(token_id)
        text = self.tokenizer.decode(self.window)
        whole = text.rstrip("\ufffd")
        if len(whole) == len(text) or len(self.window) >= self.max_window:
            return self.flush()
        piece, self.emitted = whole[self.emitted :], len(whole)
        return piece

    def flush(self) -> str:
        """Everything not yet returned, complete or not; the next token starts a new window."""
        piece = self.tokenizer.decode(self.window)[self.emitted :]
        self.window, self.emitted = [], 0
        return piece


class StopStrings:
    """Cuts a stream of text pieces before the first stop string.

    Text that could be the start of a stop string is held back until it is clear, so a
    stop string split across pieces is still caught and never printed.
    """

    def __init__(self, stops: Sequence[str] = ()) -> None:
        self.stops = [s for s in stops if s]
        self.held = ""

    def push(self, piece: str) -> tuple[str, bool]:
        """(text safe to show, whether a stop string was reached)."""
        text = self.held + piece
        hits = [i for i in (text.find(s) for s in self.stops) if i >= 0]
        if hits:
            self.held = ""
            return text[: min(hits)], True
        keep = self._partial_match(text)
        self.held = text[len(text) - keep :]
        return text[: len(text) - keep], False

    def _partial_match(self, text: str) -> int:
        """Length of the longest end of ``text`` that begins some stop string."""
        longest = max((len(s) for s in self.stops), default=1)
        for n in range(min(len(text), longest - 1), 0, -1):
            if any(s.startswith(text[-n:]) for s in self.stops):
                return n
        return 0

    def flush(self) -> str:
        text, self.held = self.held, ""
        return text


class TextStream:
    """One sample's text as its tokens arrive: decoded, cut at a stop string, end-of-text or
    one of ``stop_ids`` (a chat reply's end-of-turn token)."""

    def __init__(
        self, tokenizer: Tokenizer, stops: Sequence[str] = (), stop_ids: Sequence[int] = ()
    ) -> None:
        self.decoder = StreamDecoder(tokenizer)
        self.stops = StopStrings(stops)
        self.stop_ids = {tokenizer.eot_id, *stop_ids} - {None}
        self.done = False

    def push(self, token_id: int) -> str:
        if self.done:
            return ""
        if token_id in self.stop_ids:
            return self.finish()
        piece, self.done = self.stops.push(self.decoder.push(token_id))
        return piece

    def finish(self) -> str:
        """The held-back text once no more tokens come."""
        if self.done:
            return ""
        self.done = True
        piece, stopped = self.stops.push(self.decoder.flush())
        return piece if stopped else piece + self.stops.flush()


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\"}


def unescape(text: str) -> str:
    """Backslash escapes typed on a command line (\\n, \\t, \\r, \\\\) -> the characters."""
    return re.sub(r"\\([ntr\\])", lambda m: _ESCAPES[m.group(1)], text)


def make_generator(device: torch.device | str, seed: int | None) -> torch.Generator:
    """A random generator on ``device``: seeded for reproducible samples, else fresh."""
    generator = torch.Generator(device=device)
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)
    return generator


def token_steps(
    model: GPT,
    idx: torch.Tensor,
    config: SampleConfig,
    generator: torch.Generator,
    tokenizer: Tokenizer,
) -> Iterator[torch.Tensor]:
    """``model.generate_tokens`` with every control taken from ``config``: the next ids (B, 1)
    of the rows of ``idx``, one step at a time, only ids ``tokenizer`` can decode. On a CPU,
    refuses first what would not fit in RAM (``inference.memory``)."""
    if idx.device.type == "cpu":
        batch, prompt = idx.shape
        check_generation(model.config, config, batch, prompt, element_size(model))
    return model.generate_tokens(
        idx,
        config.max_new_tokens,
        config.temperature,
        config.top_k or None,
        generator,
        use_cache=config.use_cache,
        context_shift=config.context_shift,
        vocab_limit=tokenizer.vocab_size,
        top_p=config.top_p,
        min_p=config.min_p,
        repetition_penalty=config.repetition_penalty,
    )


def stream_samples(
    model: GPT,
    tokenizer: Tokenizer,
    prompt: str,
    config: SampleConfig,
    generator: torch.Generator | None = None,
) -> Iterator[tuple[int, str]]:
    """Yield (sample index, text piece) while ``config.num_samples`` samples grow as a batch.

    Stops early once every sample has hit a stop string or the end-of-text token.
    ``generator`` overrides ``config.seed`` (the chat loop keeps one across turns).
    """
    config.validate(model.config.block_size)
    ids = prompt_ids(tokenizer, prompt)
    if max(ids) >= model.config.vocab_size:
        raise MiniGPTError(
            f"the prompt has token id {max(ids)} but the model knows {model.config.vocab_size}; "
            "use the tokenizer the model was trained with"
        )
    device = next(model.parameters()).device
    if generator is None:
        generator = make_generator(device, config.seed)
    idx = torch.tensor([ids] * config.num_samples, dtype=torch.long, device=device)
    streams = [TextStream(tokenizer, config.stop) for _ in range(config.num_samples)]
    steps = token_steps(model, idx, config, generator, tokenizer)
    for next_ids in steps:
        for i, token in enumerate(next_ids[:, 0].tolist()):
            piece = streams[i].push(token)
            if piece:
                yield i, piece
        if all(stream.done for stream in streams):
            break
    for i, stream in enumerate(streams):
        piece = stream.finish()
        if piece:
            yield i, piece


def _settings(config: SampleConfig | None, settings: dict[str, Any]) -> SampleConfig:
    names = {f.name for f in dataclasses.fields(SampleConfig)}
    unknown = sorted(set(settings) - names)
    if unknown:
        raise TypeError(f"unknown sample setting(s) {unknown}; known: {sorted(names)}")
    if "stop" in settings and isinstance(settings["stop"], str):
        settings["stop"] = (settings["stop"],)
    return dataclasses.replace(config or SampleConfig(), **settings)


def stream_text(
    model: GPT,
    tokenizer: Tokenizer,
    prompt: str = "",
    config: SampleConfig | None = None,
    **settings: Any,
) -> Iterator[str]:
    """Yield the text of one continuation of ``prompt`` piece by piece, as it is generated.

    ``settings`` override fields of ``config`` (``SampleConfig``), e.g.
    ``for piece in stream_text(model, tok, "ROMEO:", temperature=0.7, stop=["\\n\\n"])``.
    """
    config = _settings(config, {**settings, "num_samples": 1})
    for _, piece in stream_samples(model, tokenizer, prompt, config):
        yield piece


def generate_samples(
    model: GPT,
    tokenizer: Tokenizer,
    prompt: str = "",
    config: SampleConfig | None = None,
    **settings: Any,
) -> list[str]:
    """``num_samples`` continuations of ``prompt`` (without it), generated as one batch."""
    config = _settings(config, settings)
    texts = [""] * config.num_samples
    for i, piece in stream_samples(model, tokenizer, prompt, config):
        texts[i] += piece
    return texts


def generate_text(
    model: GPT,
    tokenizer: Tokenizer,
    prompt: str = "",
    max_new_tokens: int = 200,
    temperature: float = 0.8,
    top_k: int | None = 200,
    seed: int | None = 1337,
    on_text: Callable[[str], None] | None = None,
    **settings: Any,
) -> str:
    """``prompt`` and one continuation; ``on_text`` receives the new pieces as they come.

    ``settings``: any other ``SampleConfig`` field (top_p, min_p, stop, ...).
    """
    pieces = []
    for piece in stream_text(
        model,
        tokenizer,
        prompt,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        top_k=top_k or 0,
        seed=seed,
        **settings,
    ):
        pieces.append(piece)
        if on_text:
            on_text(piece)
    return prompt + "".join(pieces)
