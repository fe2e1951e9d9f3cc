"""Optional extras: whether one is installed, and the one line that says how to install it.

Plots, TensorBoard, sweeps, Hugging Face interop and serving live behind pip extras
(``minigpt[plot]``, ...) so that a bare install stays small. Every stage asks here, so a missing
package is always reported the same way, naming the extra that brings it.
"""

from __future__ import annotations

import importlib.util

from minigpt._version import older_than

# module -> the extra of pyproject.toml that installs it
EXTRA_OF = {
    "matplotlib": "plot",
    "tensorboard": "tensorboard",
    "optuna": "sweep",
    "transformers": "hf",
    "pyarrow": "parquet",
    "fastapi": "serve",
    "uvicorn": "serve",
    "prometheus_client": "serve",
    "wandb": "wandb",
    "trackio": "trackio",
    "mlflow": "mlflow",
}


def available(module: str) -> bool:
    """True when ``module`` can be imported (checked without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing, or a broken entry
        return False


def install_hint(module: str) -> str:
    """``pip install 'minigpt[EXTRA]'`` for the extra that brings ``module``."""
    extra = EXTRA_OF.get(module)
    return f"pip install 'minigpt[{extra}]'" if extra else f"pip install {module}"


def missing(module: str, what: str) -> str:
    """One line for a feature skipped because ``module`` is not installed."""
    return f"{what} skipped ({module} is not installed; {install_hint(module)})"


def too_old(module: str, floor: tuple[int, int], what: str) -> str | None:
    """One line when the installed ``module`` is older than ``floor`` (major, minor) for
    ``what``; None when it is new enough or its version cannot be read."""
    import importlib.metadata  # here: its import costs every CLI call ~20 ms, this is rare

    try:
        version = importlib.metadata.version(module)
    except importlib.metadata.PackageNotFoundError:
        return None
    if not older_than(version, floor):
        return None
    need = ".".join(map(str, floor))
    extra = EXTRA_OF.get(module)
    upgrade = (
        f"pip install -U 'minigpt[{extra}]'" if extra else f"pip install -U '{module}>={need}'"
    )
    return f"{what} needs {module}>={need}, but {version} is installed; {upgrade}"
