"""Resolving a run config: defaults < preset < TOML file < overrides; saving and reloading it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import tomli_w

from minigpt.config.fields import coerce, suggest
from minigpt.config.presets import preset_overrides
from minigpt.config.schema import SECTIONS, RunConfig, TrainConfig, all_fields
from minigpt.config.validation import validate
from minigpt.errors import MiniGPTError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib


def apply_overrides(config: RunConfig, overrides: dict[str, Any], source: str) -> None:
    """Set flat ``name -> value`` pairs on the config, checking names and types."""
    fields = all_fields()
    for name, value in overrides.items():
        key = name.replace("-", "_")
        if key not in fields:
            raise MiniGPTError(f"unknown config key {name!r} in {source}{suggest(key, fields)}")
        section, _, tp = fields[key]
        if key == "batch_size" and isinstance(value, str) and value.lower() == "auto":
            value = 0
        value = coerce(key, value, tp)
        if key == "batch_size" and value == 0:
            _set_auto_batch(config.train)
        else:
            setattr(getattr(config, section), key, value)


def _set_auto_batch(train: TrainConfig) -> None:
    """``batch_size = auto`` is stored as 0; it keeps the effective batch of the layers below."""
    if train.batch_size > 0 and train.effective_batch == 0:
        train.effective_batch = train.batch_size * train.grad_accum
    train.batch_size = 0


def _flatten_toml(data: dict[str, Any], path: Path) -> tuple[str | None, dict[str, Any]]:
    """Accept both ``[model]``/``[train]`` tables and flat keys; return (preset, flat dict)."""
    flat: dict[str, Any] = {}
    preset = data.pop("preset", None)
    if preset is not None and not isinstance(preset, str):
        raise MiniGPTError(f"'preset' in {path} must be a preset name in quotes, got {preset!r}")
    for key, value in data.items():
        if key in SECTIONS:
            if not isinstance(value, dict):
                raise MiniGPTError(f"'{key}' in {path} must be a table like [{key}]")
            flat.update(value)
        elif isinstance(value, dict):
            raise MiniGPTError(
                f"unknown table [{key}] in {path}{suggest(key, SECTIONS)}; use [model] or [train]"
            )
        else:
            flat[key] = value
    return preset, flat


def read_toml(path: str | Path, what: str = "config file") -> dict[str, Any]:
    """Parse a TOML file; ``what`` names it in errors (e.g. "search space")."""
    path = Path(path)
    if not path.is_file():
        raise MiniGPTError(f"{what} {path} not found; check the path")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise MiniGPTError(f"{what} {path} is not valid TOML: {e}") from None


def load_config(
    preset: str | None = None,
    config_file: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> RunConfig:
    """Resolve defaults < preset < TOML file < overrides into a validated RunConfig."""
    config = RunConfig()
    file_preset, file_values = None, {}
    if config_file is not None:
        file_preset, file_values = _flatten_toml(read_toml(config_file), Path(config_file))
    chosen = preset or file_preset
    if chosen:
        apply_overrides(config, preset_overrides(chosen), f"preset '{chosen}'")
    apply_overrides(config, file_values, str(config_file))
    apply_overrides(config, overrides or {}, "the command line")
    validate(config)
    return config


def save_config(config: RunConfig, path: str | Path) -> None:
    """Write the resolved config as TOML (``minigpt train --config`` reads it back)."""
    Path(path).write_text(tomli_w.dumps(config.to_dict()), encoding="utf-8")


def config_from_dict(data: dict[str, Any]) -> RunConfig:
    """Rebuild a RunConfig from ``to_dict()`` output (e.g. a checkpoint's JSON)."""
    config = RunConfig()
    flat = {k: v for section in SECTIONS for k, v in data.get(section, {}).items()}
    apply_overrides(config, flat, "the checkpoint")
    return config
