"""``minigpt chat``: a prompt loop, as a conversation or as text to continue.

A model tuned on conversations (``prepare --format chat``; its tokenizer has a chat template)
gets each line as a user message and answers as the assistant: the conversation so far (and a
``--system`` message) is rendered with its template, the reply ends at the end-of-turn token,
and the oldest turns are dropped when the conversation outgrows the block
(``chat_completion.py``). A plain language model continues each line you type instead, and
(with history on) the conversation so far is part of the context, so the text grows like one
document; an empty line asks for more of it. Lines starting with ``/`` change the sampling controls
between turns (``/temperature 0.5``, ``/top_k 40``, ``/stop \\n\\n``); ``/help`` lists them.
Ctrl-C during generation stops that answer; Ctrl-C or Ctrl-D at the prompt exits.
"""

from __future__ import annotations

import dataclasses
import sys
import typing
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from minigpt.config import coerce, suggest
from minigpt.config.sampling import SampleConfig
from minigpt.data.chat_template import Message, check_template
from minigpt.data.tokenizer import Tokenizer
from minigpt.errors import MiniGPTError
from minigpt.inference.chat_completion import ChatReply, stream_chat
from minigpt.inference.generate import make_generator, stream_samples, unescape
from minigpt.model import GPT

# Controls that make sense per turn (a chat turn is always one sample).
SETTINGS = [f for f in dataclasses.fields(SampleConfig) if f.name != "num_samples"]
ACTIONS = {
    "help": "list the commands and the current settings",
    "reset": "forget the conversation so far",
    "history": "on|off: whether the model sees the conversation so far",
    "quit": "leave (also /exit, Ctrl-D, or Ctrl-C at the prompt)",
}


@dataclass
class ChatState:
    """What a chat session carries from turn to turn."""

    config: SampleConfig
    generator: torch.Generator
    history: bool = True
    transcript: str = ""
    done: bool = field(default=False, repr=False)
    # Chat-tuned models: the conversation as messages, and the system message.
    template: bool = False
    system: str | None = None
    messages: list[Message] = field(default_factory=list)

    def conversation(self, line: str) -> list[Message]:
        """The messages for this turn: system, the past turns (with history on), the line."""
        past = self.messages if self.history else []
        system = [{"role": "system", "content": self.system}] if self.system else []
        return [*system, *past, {"role": "user", "content": line}]

    def context(self, line: str) -> str:
        """The prompt for this turn: the transcript, a newline if needed, and the new line.

        An empty line continues the transcript itself.
        """
        if not self.history or not self.transcript:
            return line
        if not line:
            return self.transcript
        sep = "" if self.transcript.endswith("\n") else "\n"
        return self.transcript + sep + line


def help_text(state: ChatState) -> str:
    hints = typing.get_type_hints(SampleConfig)
    lines = ["commands:"]
    lines += [f"  /{name:<20} {text}" for name, text in ACTIONS.items()]
    lines.append("settings (/name value; now):")
    for f in SETTINGS:
        value = getattr(state.config, f.name)
        shown = list(value) if hints[f.name] == tuple[str, ...] else value
        lines.append(f"  /{f.name:<20} {f.metadata['help']} ({shown!r})")
    lines.append("  (/stop TEXT adds a stop string, /stop none clears them)")
    return "\n".join(lines)


def apply_command(state: ChatState, line: str, block_size: int) -> str:
    """Run one ``/command``; return what to print. Bad input raises MiniGPTError."""
    name, _, value = line[1:].strip().partition(" ")
    name, value = name.replace("-", "_"), value.strip()
    if name in ("quit", "exit"):
        state.done = True
        return ""
    if name == "help":
        return help_text(state)
    if name == "reset":
        state.transcript = ""
        state.messages = []
        return "(conversation forgotten)"
    if name == "history":
        state.history = coerce("history", value, bool)
        return f"(history {'on' if state.history else 'off'})"
    settings = {f.name: f for f in SETTINGS}
    if name not in settings:
        known = [*ACTIONS, "exit", *settings]
        raise MiniGPTError(f"unknown command /{name}{suggest(name, known)}; /help lists them")
    if not value:
        return f"{name} = {getattr(state.config, name)!r}"
    if name == "stop":
        stop = () if value.lower() == "none" else (*state.config.stop, unescape(value))
        new = dataclasses.replace(state.config, stop=stop)
    else:
        typed = coerce(name, value, typing.get_type_hints(SampleConfig)[name])
        new = dataclasses.replace(state.config, **{name: typed})
    new.validate(block_size)
    state.config = new
    if name == "seed":
        state.generator = make_generator(state.generator.device, new.seed)
    return f"({name} = {getattr(new, name)!r})"


def _reply(model: GPT, tokenizer: Tokenizer, state: ChatState, line: str, write) -> None:
    """Answer ``line`` as the assistant, streaming the reply; Ctrl-C stops this answer only."""
    messages = state.conversation(line)
    reply = ""
    try:
        for item in stream_chat(model, tokenizer, messages, state.config, state.generator):
            if isinstance(item, ChatReply):
                if item.trimmed_messages:
                    write(f"\n(the {item.trimmed_messages} oldest message(s) no longer fit)")
                if item.finish_reason == "length":
                    write(" [max_new_tokens reached]")
            else:
                reply += item
                write(item)
    except KeyboardInterrupt:
        write(" [stopped]")
    write("\n")
    state.messages = [
        *messages[1 if state.system else 0 :],
        {"role": "assistant", "content": reply},
    ]


def _turn(model: GPT, tokenizer: Tokenizer, state: ChatState, line: str, write) -> None:
    """Continue ``line``, streaming the new text; Ctrl-C stops this answer only."""
    prompt = state.context(line)
    generated = ""
    try:
        for _, piece in stream_samples(model, tokenizer, prompt, state.config, state.generator):
            generated += piece
            write(piece)
    except KeyboardInterrupt:
        write(" [stopped]")
    write("\n")
    state.transcript = prompt + generated


def chat(
    model: GPT,
    tokenizer: Tokenizer,
    config: SampleConfig | None = None,
    history: bool = True,
    read: Callable[[str], str] = input,
    write: Callable[[str], object] | None = None,
    system: str | None = None,
) -> None:
    """Run the prompt loop until /quit, end of input (Ctrl-D) or Ctrl-C at the prompt.

    A model with a chat template answers as an assistant (``system``: the system message);
    others continue the text. ``read`` and ``write`` default to the terminal; tests and
    notebooks can pass their own.
    """
    if write is None:

        def write(text: str) -> None:
            sys.stdout.write(text)
            sys.stdout.flush()

    config = dataclasses.replace(config or SampleConfig(), num_samples=1)
    config.validate(model.config.block_size)
    device = next(model.parameters()).device
    state = ChatState(config, make_generator(device, config.seed), history)
    state.template, state.system = tokenizer.chat_template is not None, system
    if state.template:
        check_template(tokenizer.chat_template, tokenizer)  # one line now, not at the 1st reply
        write("minigpt chat: talk to the model; /help for commands, Ctrl-D quits\n")
    elif system:
        raise MiniGPTError("--system needs a chat-tuned model (one with a chat template)")
    else:
        write(
            "minigpt chat: type text for the model to continue; /help for commands, Ctrl-D quits\n"
        )
    while not state.done:
        try:
            line = read("> ")
        except (EOFError, KeyboardInterrupt):
            write("\n")
            return
        if line.startswith("/"):
            try:
                message = apply_command(state, line, model.config.block_size)
            except MiniGPTError as e:
                message = f"error: {e}"
            if message:
                write(message + "\n")
            continue
        if not (line.strip() if state.template else state.context(line)):
            continue
        try:
            (_reply if state.template else _turn)(model, tokenizer, state, line, write)
        except MiniGPTError as e:
            write(f"error: {e}\n")
