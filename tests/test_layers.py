"""The layer rule and the no-cycle rule hold for ``src/minigpt``, and the checker catches what
breaks them: a cycle, an import up the layers, also when lazy or under ``TYPE_CHECKING``."""

from pathlib import Path

import pytest

from minigpt._layers import violations

SRC = Path(__file__).resolve().parents[1] / "src"


def test_the_package_keeps_the_layer_rule_without_cycles():
    assert violations(SRC) == []


def fake_package(root: Path, files: dict[str, str]) -> Path:
    """A tiny ``minigpt`` under ``root``: the given modules (path -> source) and every
    ``__init__.py`` on their way."""
    for name, source in {"minigpt/__init__.py": "", **files}.items():
        path = root / name
        for parent in path.relative_to(root).parents:
            init = root / parent / "__init__.py"
            if parent.parts:
                init.parent.mkdir(parents=True, exist_ok=True)
                init.touch()
        path.write_text(source)
    return root


CLEAN = {
    "minigpt/model/gpt.py": "import torch\nfrom minigpt.errors import MiniGPTError\n",
    "minigpt/errors.py": "class MiniGPTError(Exception):\n    pass\n",
    "minigpt/training/loop.py": "from minigpt.model.gpt import torch\nfrom . import parts\n",
    "minigpt/training/parts.py": "from minigpt.model import gpt\n",
    "minigpt/training/leaf.py": "",
}


def test_a_tree_that_keeps_the_rules_has_no_violations(tmp_path):
    assert violations(fake_package(tmp_path, CLEAN)) == []


def test_a_cycle_inside_one_package_is_caught(tmp_path):
    src = fake_package(
        tmp_path, {**CLEAN, "minigpt/training/parts.py": "from minigpt.training import loop\n"}
    )
    assert violations(src) == ["import cycle: minigpt.training.loop <-> minigpt.training.parts"]


@pytest.mark.parametrize(
    "source, line",
    [
        ("from minigpt.training.leaf import x\n", 1),  # at the top
        ("import os\n\n\ndef f():\n    import minigpt.training.leaf\n", 5),  # lazy
        (
            "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n"
            "    from minigpt.training import leaf\n",
            4,
        ),
        ("from ..training import leaf\n", 1),  # relative
    ],
    ids=["top", "lazy", "type-checking", "relative"],
)
def test_an_import_up_the_layers_is_caught_however_it_is_written(tmp_path, source, line):
    src = fake_package(tmp_path, {**CLEAN, "minigpt/model/gpt.py": source})
    problems = violations(src)
    where = f"{src / 'minigpt/model/gpt.py'}:{line}: minigpt.model.gpt (minigpt.model) imports"
    # ``from minigpt.training import leaf`` imports the package and the module: both count
    assert problems and all(p.startswith(where) for p in problems), problems
    assert f"{where} minigpt.training.leaf, a layer above (minigpt.training)" in problems


def test_a_module_outside_every_layer_is_named(tmp_path):
    src = fake_package(tmp_path, {**CLEAN, "minigpt/newstage/thing.py": ""})
    assert [p for p in violations(src) if "belongs to no layer" in p] == [
        f"{src / 'minigpt/newstage/__init__.py'}: module minigpt.newstage belongs to no "
        "layer (add it to LAYERS)",
        f"{src / 'minigpt/newstage/thing.py'}: module minigpt.newstage.thing belongs to no "
        "layer (add it to LAYERS)",
    ]
