import sys
from pathlib import Path

from minigpt.extras import EXTRA_OF, available, install_hint, missing

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def test_available_checks_without_importing(monkeypatch):
    assert available("json")
    assert not available("no_such_module_minigpt")
    assert not available("no_such_package_minigpt.sub")  # parent missing: False, no error
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as a test hides a package
    assert not available("matplotlib")


def test_every_named_extra_exists_in_pyproject():
    extras = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]
    for module, extra in EXTRA_OF.items():
        assert extra in extras, f"{module}: no extra {extra!r} in pyproject.toml"
        assert any(req.startswith(module) for req in extras[extra]), (module, extra)


def test_messages_name_the_extra():
    assert install_hint("matplotlib") == "pip install 'minigpt[plot]'"
    assert install_hint("somepkg") == "pip install somepkg"
    assert missing("tensorboard", "TensorBoard logs") == (
        "TensorBoard logs skipped (tensorboard is not installed; "
        "pip install 'minigpt[tensorboard]')"
    )
