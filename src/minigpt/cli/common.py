"""Shared CLI pieces: one-line argument errors, and config fields as flags."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Any, NoReturn

from minigpt._version import require_torch
from minigpt.config import PRESETS, RunConfig, all_fields, load_config, suggest
from minigpt.config.fields import base_type
from minigpt.errors import MiniGPTError
from minigpt.hostmem import NO_CHECK_ENV


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, with a suggestion for near misses."""

    def parse_known_args(self, args=None, namespace=None):  # noqa: ANN001, ANN201 (argparse's)
        # The top-level parser reports a subcommand's unknown flags: it needs the command line
        # to suggest from that subcommand's flags only.
        self._argv = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def error(self, message: str) -> NoReturn:
        if message.startswith("unrecognized arguments:"):
            flags = [a for a in message.split(":", 1)[1].split() if a.startswith("-")]
            known = known_options(self, getattr(self, "_argv", []))
            if flags:
                message += suggest(flags[0].split("=")[0], known)
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def known_options(parser: argparse.ArgumentParser, argv: list[str] = ()) -> list[str]:
    """Every option string of a parser and of the subcommand ``argv`` names (of all its
    subcommands when it names none): ``train --temprature`` must not suggest a flag of
    ``sample``."""
    words = [str(a) for a in argv if not str(a).startswith("-")]
    known = []
    for action in parser._actions:
        known.extend(action.option_strings)
        if isinstance(action, argparse._SubParsersAction):
            chosen = next((w for w in words if w in action.choices), None)
            subs = [action.choices[chosen]] if chosen else action.choices.values()
            rest = words[words.index(chosen) + 1 :] if chosen else []  # a nested subcommand
            for sub in subs:
                known.extend(known_options(sub, rest))
    return known


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """--preset, --config, and one flag per config field (unset flags keep lower layers)."""
    parser.add_argument("--preset", choices=sorted(PRESETS), help="start from a named preset")
    parser.add_argument("--config", metavar="FILE", help="TOML config file ([model], [train])")
    defaults = RunConfig().to_dict()
    groups = {s: parser.add_argument_group(f"{s} config") for s in ("model", "train")}
    for name, (section, field, _) in all_fields().items():
        is_bool = isinstance(defaults[section][name], bool)
        groups[section].add_argument(
            _flag(name),
            dest=f"cfg_{name}",
            default=argparse.SUPPRESS,
            # A bare boolean flag (`--fsdp`) means true; `--fsdp false` still works.
            nargs="?" if is_bool else None,
            const="true" if is_bool else None,
            metavar=type(defaults[section][name]).__name__.upper(),
            help=f"{field.metadata['help']} (default: {defaults[section][name]!r})",
        )


def field_argument(
    group: argparse._ActionsContainer, field: dataclasses.Field, tp: Any, *short: str
) -> None:
    """``--name VALUE`` for a dataclass field set straight from the command line (not layered
    like the run config's): its type, default and help are the field's."""
    group.add_argument(
        *short,
        _flag(field.name),
        type=base_type(tp),
        default=field.default,
        help=f"{field.metadata['help']} (%(default)s)",
    )


def config_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The config fields given on the command line, as raw strings (typed by load_config)."""
    return {k[4:]: v for k, v in vars(args).items() if k.startswith("cfg_")}


def config_from_args(args: argparse.Namespace, **extra: Any) -> RunConfig:
    return load_config(args.preset, args.config, {**config_overrides(args), **extra})


def add_memory_check_argument(parser: argparse.ArgumentParser) -> None:
    """--no-memory-check: start even when the RAM estimate says the job will not fit."""
    parser.add_argument(
        "--no-memory-check",
        action="store_true",
        help="start even when the estimated peak exceeds the available RAM (experts; the same "
        f"as {NO_CHECK_ENV}=1)",
    )


def check_torch() -> None:
    """The torch floor as a CLI error (one line, no traceback), checked before a command's
    stages import torch; it imports torch, so torch-free commands skip it."""
    try:
        require_torch()
    except ImportError as e:
        raise MiniGPTError(str(e)) from None


def print_err(message: str) -> None:
    print(message, file=sys.stderr)
