"""Field helpers shared by every config dataclass: help text, type coercion, near-miss hints.

Kept apart from the run config's schema so that other configs (``SampleConfig``) declare their
fields the same way and the CLI coerces their values the same way, without importing the run
config's presets or loaders.
"""

from __future__ import annotations

import difflib
import types
import typing
from dataclasses import field
from typing import Any

from minigpt.errors import MiniGPTError


def described(default: Any, help: str) -> Any:
    """A dataclass field with its help text: the one place a flag's default and help live."""
    return field(default=default, metadata={"help": help})


SUGGEST_CUTOFF = 0.7


def suggest(name: str, choices: typing.Iterable[str]) -> str:
    """' (did you mean X?)' for a near miss, else ''.

    Leading dashes are left out of the comparison: every flag shares ``--``, which alone made
    ``--bogus`` look 67% like ``--pos``. The cutoff of 0.7 (difflib's default is 0.6) still
    finds 99% of one-letter typos of minigpt's flags (a letter dropped, added, changed or two
    swapped) but no longer offers ``--pos`` for ``--epochs`` or ``--errors`` for ``--verbose``.
    """
    bare: dict[str, str] = {}
    for choice in choices:
        bare.setdefault(choice.lstrip("-") or choice, choice)
    close = difflib.get_close_matches(
        name.lstrip("-") or name, list(bare), n=1, cutoff=SUGGEST_CUTOFF
    )
    return f" (did you mean '{bare[close[0]]}'?)" if close else ""


def base_type(tp: Any) -> Any:
    """int for int, int for `int | None`."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0]
    return tp


def coerce(name: str, value: Any, tp: Any) -> Any:
    """Convert ``value`` (from TOML or a CLI string) to the field's type, or fail in one line."""
    base = base_type(tp)
    if value is None or (isinstance(value, str) and value.lower() == "none" and base is not str):
        if base is not tp:  # optional field
            return None
        raise MiniGPTError(f"config key '{name}' cannot be empty; give a {base.__name__}")
    try:
        if base is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on"):
                return True
            if isinstance(value, str) and value.lower() in ("false", "0", "no", "off"):
                return False
            raise ValueError
        if base is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if base is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if base is str:
            if isinstance(value, bool):  # e.g. `compile = true` in TOML
                return "true" if value else "false"
            if not isinstance(value, str):
                raise ValueError
            return value
    except (TypeError, ValueError):
        pass
    raise MiniGPTError(
        f"config key '{name}' expects {base.__name__}, got {value!r}; "
        f"e.g. {name} = {_example(base)}"
    )


def _example(base: Any) -> str:
    return {bool: "true", int: "4", float: "0.001", str: '"text"'}.get(base, "...")
