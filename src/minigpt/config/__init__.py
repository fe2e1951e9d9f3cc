"""Typed run configuration: defaults, named presets, TOML files and command-line overrides.

A run is fully described by a ``RunConfig`` (a ``ModelConfig`` plus a ``TrainConfig``). It is
resolved in layers, each overriding the one before: dataclass defaults, then a named preset,
then a TOML file, then individual overrides (the command line). The resolved config is saved
next to the checkpoints as ``config.toml``, and ``minigpt train --config that/config.toml``
reproduces the run.

Field names are unique across both sections, so every field is also one flat CLI flag
(``--n-layer 4``) and one flat key in code (``overrides={"n_layer": 4}``).

The package is split by job: ``schema`` (the dataclasses), ``presets``, ``loading`` (TOML,
overrides, save and reload), ``validation`` and ``fields`` (help text, coercion, hints shared
with ``sampling.SampleConfig``). Everything is re-exported here.
"""

from minigpt.config.fields import coerce, described, suggest
from minigpt.config.loading import (
    apply_overrides,
    config_from_dict,
    load_config,
    read_toml,
    save_config,
)
from minigpt.config.presets import MODERN_RECIPE, PRESETS, preset_overrides
from minigpt.config.schema import (
    SECTIONS,
    ModelConfig,
    RunConfig,
    TrainConfig,
    all_fields,
    swiglu_hidden,
)
from minigpt.config.validation import validate

__all__ = [
    "MODERN_RECIPE",
    "PRESETS",
    "SECTIONS",
    "ModelConfig",
    "RunConfig",
    "TrainConfig",
    "all_fields",
    "apply_overrides",
    "coerce",
    "config_from_dict",
    "described",
    "load_config",
    "preset_overrides",
    "read_toml",
    "save_config",
    "suggest",
    "swiglu_hidden",
    "validate",
]
