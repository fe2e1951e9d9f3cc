"""Start-up stays cheap: ``import minigpt``, ``--help``, argument errors and the torch-free
commands never import torch (seconds on a small machine); ``import minigpt``, help and
argument errors not numpy, ftfy or the tokenizers either (a third of a second); the public
names load on first use. Each check runs in a fresh interpreter, since this one imported torch
long ago; it asserts on ``sys.modules``, never on time. The torch floor on first use:
tests/test_version.py."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import minigpt
from minigpt.cli import build_parser

SRC = str(Path(__file__).resolve().parents[1] / "src")

# What start-up must not import unless a command needs it (each costs 20 ms to seconds).
HEAVY = ("torch", "numpy", "ftfy", "tokenizers")

# Runs the snippet, then prints which of HEAVY got imported as the last line of stdout.
FOOTER = f'\nimport sys\nprint("\\nimported:", *[m for m in {HEAVY} if m in sys.modules])\n'

# Calls the CLI as the `minigpt` command does, for every argv given, whatever it exits with.
CLI = """
from minigpt.cli import main
for argv in {argvs}:
    try:
        main(argv)
    except SystemExit:
        pass
"""


def heavy_imports(snippet: str) -> set[str]:
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(snippet) + FOOTER],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    last = done.stdout.strip().splitlines()[-1]
    assert done.returncode == 0 and last.startswith("imported:"), done.stderr
    return set(last.split()[1:])


def run_cli_fresh(*argvs: list[str]) -> set[str]:
    return heavy_imports(CLI.format(argvs=json.dumps([[str(a) for a in v] for v in argvs])))


def test_import_minigpt_leaves_torch_out():
    assert heavy_imports("import minigpt\nassert 'train' in dir(minigpt)") == set()


def test_torch_free_names_and_modules_leave_torch_out():
    assert "torch" not in heavy_imports(
        """
        import importlib
        import minigpt
        for module in minigpt.TORCH_FREE:
            importlib.import_module(module)
        for name, module in minigpt._SOURCES.items():
            if module in minigpt.TORCH_FREE:
                getattr(minigpt, name)
        """
    )


def test_help_and_argument_errors_leave_torch_out():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    argvs = [["--help"], ["--no-such-flag"], ["no-such-command"]]
    argvs += [[name, "--help"] for name in sub.choices]
    argvs += [["train", "--n-layr", "2"], ["sample"], ["tokenizer", "inspect", "--help"]]
    assert len(sub.choices) >= 12
    assert run_cli_fresh(*argvs) == set()


def test_torch_free_commands_leave_torch_out(tmp_path, text_file):
    ds = tmp_path / "ds"
    assert "torch" not in run_cli_fresh(
        ["prepare", text_file, "--out", ds, "--quiet", "--workers", "1"],
        ["tokenizer", "inspect", ds, "To be"],
        ["tokenizer", "encode", ds, "To be"],
        ["tokenizer", "decode", ds, "1", "2"],
    )
    assert (ds / "meta.json").is_file()  # the commands ran, not just their parsers


def test_a_command_that_needs_torch_imports_it_when_it_runs():
    # The control: the probe sees torch once a command actually uses it.
    assert "torch" in run_cli_fresh(["params", "--vocab-size", "65"])


def test_every_public_name_resolves_to_its_module():
    assert set(minigpt.__all__) == set(minigpt._SOURCES) | {"__version__"}
    for name, module in minigpt._SOURCES.items():
        assert getattr(minigpt, name) is getattr(importlib.import_module(module), name)
    namespace: dict = {}
    exec("from minigpt import *", namespace)
    assert set(minigpt.__all__) <= set(namespace)
    assert set(minigpt.__all__) <= set(dir(minigpt))


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="has no attribute 'trian'"):
        minigpt.trian  # noqa: B018
    with pytest.raises(ImportError, match="cannot import name 'trian'"):
        from minigpt import trian  # noqa: F401
