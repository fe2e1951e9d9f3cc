"""``minigpt --version`` for bug reports, and the torch floor (issue 19), checked where torch
is first needed: a stage's first use through ``minigpt.X``, or a command that needs it."""

import importlib
import importlib.metadata
import sys
from pathlib import Path

import pytest
import torch

import minigpt
from minigpt import extras
from minigpt._version import TORCH_FLOOR, torch_too_old
from minigpt.cli import main
from minigpt.config import load_config
from minigpt.interop.hf_check import TRANSFORMERS_FLOOR
from tests.test_cli import run_cli

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib


def test_version_names_minigpt_python_torch_and_the_devices(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"minigpt {minigpt.__version__}"
    assert lines[1].startswith(f"Python {sys.version.split()[0]} (")
    assert lines[2].startswith(f"torch {torch.__version__} (CUDA ")
    assert lines[3].startswith("CPU: ") and "logical CPUs" in lines[3]
    assert lines[4].startswith("RAM: ") and lines[4].endswith("available to this process")
    devices = lines[5:]
    if torch.cuda.is_available():
        names = [f"cuda:{i}: {torch.cuda.get_device_name(i)}" for i in range(len(devices))]
        assert len(devices) == torch.cuda.device_count()
        assert all(d.startswith(n) for d, n in zip(devices, names, strict=True))
    else:
        assert len(devices) == 1 and devices[0].startswith(("mps: ", "GPU: none"))


@pytest.mark.parametrize(
    ("version", "too_old"),
    [
        ("2.5.1", True),
        ("1.13.0", True),
        ("2.6.0", False),
        ("2.13.0+cpu", False),
        ("3.0.0a0", False),
    ],
)
def test_torch_floor(version, too_old):
    message = torch_too_old(version)
    assert (message is not None) == too_old
    if too_old:
        assert "\n" not in message
        assert (
            f"torch {version} is installed" in message and "pip install -U 'torch>=2.6'" in message
        )


def test_pyproject_declares_the_floor_the_import_checks():
    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    floor = ".".join(map(str, TORCH_FLOOR))
    assert f"torch>={floor}" in pyproject["project"]["dependencies"]


OLD_TORCH = (
    f"minigpt {minigpt.__version__} needs torch>=2.6, but torch 2.4.1 is installed; "
    "upgrade it: pip install -U 'torch>=2.6'"
)


def test_an_old_torch_fails_on_the_first_use_of_a_stage_in_one_line(monkeypatch):
    monkeypatch.setattr(torch, "__version__", "2.4.1")
    monkeypatch.delitem(vars(minigpt), "train", raising=False)  # as if never used yet
    with pytest.raises(ImportError) as info:
        minigpt.train  # noqa: B018
    assert str(info.value) == OLD_TORCH
    monkeypatch.delitem(vars(minigpt), "load_config", raising=False)
    assert minigpt.load_config is load_config  # a torch-free name needs no check


@pytest.mark.parametrize(
    "argv",
    [
        ["sample", "nowhere"],
        ["train", "--max-iters", "1"],
        ["prepare", "x", "--out", "y", "--tokenizer", "auto"],
    ],
)
def test_an_old_torch_stops_a_command_in_one_line(monkeypatch, capsys, argv):
    monkeypatch.setattr(torch, "__version__", "2.4.1")
    code, stdout, stderr = run_cli(capsys, *argv)
    assert (code, stdout, stderr) == (2, "", f"minigpt {argv[0]}: error: {OLD_TORCH}\n")


def test_an_old_torch_leaves_torch_free_commands_alone(monkeypatch, capsys, dataset):
    monkeypatch.setattr(torch, "__version__", "2.4.1")
    code, stdout, _ = run_cli(capsys, "tokenizer", "encode", dataset, "To")
    assert code == 0 and stdout.split()


@pytest.mark.parametrize(
    ("installed", "message"),
    [
        (
            "4.52.4",
            "checking the export needs transformers>=4.53, but 4.52.4 is installed; "
            "pip install -U 'minigpt[hf]'",
        ),
        ("4.53.0", None),
        ("5.24.0", None),
    ],
)
def test_too_old_names_the_floor_and_the_extra(monkeypatch, installed, message):
    monkeypatch.setattr(importlib.metadata, "version", lambda name: installed)
    assert extras.too_old("transformers", TRANSFORMERS_FLOOR, "checking the export") == message


def test_export_with_a_too_old_transformers_says_so_instead_of_checking(
    tmp_path, trained_run, capsys, monkeypatch
):
    real = importlib.metadata.version
    monkeypatch.setattr(
        importlib.metadata,
        "version",
        lambda name: "4.52.4" if name == "transformers" else real(name),
    )
    code, stdout, _ = run_cli(capsys, "export", trained_run, "--format", "hf", "--out", tmp_path)
    assert code == 0 and "checked with transformers" not in stdout
    assert "note: not checked: checking the export needs transformers>=4.53, but 4.52.4" in stdout
    assert "transformers is not installed" not in stdout
