"""Experiment trackers: ``minigpt train --log-to wandb|trackio|mlflow``.

Each tracker is a training callback (``callbacks.py``): it receives every log line
(``on_log``) and every evaluation (``__call__``), the same records ``metrics.jsonl`` gets,
plus the run's resolved config once, and the sample ``samples.txt`` got at each evaluation.
It starts lazily at its first record, so only the process that watches a run (rank 0 under
torchrun) ever opens a tracker run, and ``close`` ends it however training ends.

Where the data goes is each package's own business, set the way its users expect: wandb
follows ``WANDB_MODE``/``WANDB_PROJECT`` (``WANDB_MODE=offline`` writes under the run
folder, ``wandb sync`` uploads later); trackio keeps a local database (``TRACKIO_DIR``) and
shows it with ``trackio show``; mlflow logs to ``MLFLOW_TRACKING_URI``, by default a SQLite
database inside the run (``mlflow ui --backend-store-uri sqlite:///RUN/mlflow.db``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from minigpt.errors import MiniGPTError
from minigpt.extras import available, install_hint
from minigpt.training.callbacks import RunView

TRACKERS = ("wandb", "trackio", "mlflow")
PROJECT = "minigpt"


def numbers(record: dict[str, Any], prefix: str) -> dict[str, float]:
    """The numeric fields of a record as ``prefix/name`` (``iter`` is the step, not a metric)."""
    return {
        f"{prefix}/{k}": float(v)
        for k, v in record.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and k not in ("iter", "kind")
    }


def latest_sample(run_dir: Path) -> str | None:
    """The newest entry of ``samples.txt`` (the sample of the evaluation just made)."""
    # Here, not at the top: monitor imports torch, and the CLI reads TRACKERS before any run.
    from minigpt.training.monitor import SAMPLES_FILE

    path = Path(run_dir) / SAMPLES_FILE
    if not path.is_file():
        return None
    entries = path.read_text(encoding="utf-8").split("\n=== ")
    return entries[-1].removeprefix("=== ").strip() or None


def flat_config(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"model": {"n_layer": 6}}`` -> ``{"model.n_layer": 6}`` (trackers want flat params)."""
    out: dict[str, Any] = {}
    for k, v in config.items():
        if isinstance(v, dict):
            out.update(flat_config(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


class Tracker:
    """A callback that forwards a run's records to one experiment tracker."""

    name = ""

    def __init__(self) -> None:
        self.started = False

    # what a subclass writes
    def start(self, run: RunView, config: dict[str, Any]) -> None: ...
    def log(self, metrics: dict[str, float], step: int) -> None: ...
    def text(self, name: str, text: str, step: int) -> None: ...
    def finish(self) -> None: ...

    def _ensure(self, run: RunView) -> None:
        if not self.started:
            self.start(run, run.config.to_dict())
            self.started = True

    def on_log(self, run: RunView, record: dict[str, Any]) -> None:
        self._ensure(run)
        self.log(numbers(record, "train"), record["iter"])

    def __call__(self, run: RunView, record: dict[str, Any]) -> None:
        self._ensure(run)
        self.log(numbers(record, "eval"), record["iter"])
        sample = latest_sample(run.run_dir)
        if sample:
            self.text("sample", sample, record["iter"])

    def close(self, run: RunView) -> None:
        if self.started:
            self.finish()
            self.started = False


class WandbTracker(Tracker):
    name = "wandb"

    def start(self, run: RunView, config: dict[str, Any]) -> None:
        import wandb

        self.wandb = wandb
        self.run = wandb.init(
            project=os.environ.get("WANDB_PROJECT", PROJECT),
            name=Path(run.run_dir).name,
            dir=str(run.run_dir),
            config=config,
        )
        self.samples = wandb.Table(columns=["iter", "sample"], log_mode="MUTABLE")

    def log(self, metrics: dict[str, float], step: int) -> None:
        self.run.log(metrics, step=step)

    def text(self, name: str, text: str, step: int) -> None:
        self.samples.add_data(step, text)
        self.run.log({"samples": self.samples}, step=step)

    def finish(self) -> None:
        self.run.finish()


class TrackioTracker(Tracker):
    name = "trackio"

    def start(self, run: RunView, config: dict[str, Any]) -> None:
        import trackio

        self.trackio = trackio
        self.run = trackio.init(
            project=os.environ.get("TRACKIO_PROJECT", PROJECT),
            name=Path(run.run_dir).name,
            config=flat_config(config),
        )

    def log(self, metrics: dict[str, float], step: int) -> None:
        self.trackio.log(metrics, step=step)

    def text(self, name: str, text: str, step: int) -> None:
        self.trackio.log({name: self.trackio.Markdown(text)}, step=step)

    def finish(self) -> None:
        self.trackio.finish()


class MlflowTracker(Tracker):
    name = "mlflow"

    def start(self, run: RunView, config: dict[str, Any]) -> None:
        import mlflow

        self.mlflow = mlflow
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME", PROJECT)
        artifacts = None
        if not os.environ.get("MLFLOW_TRACKING_URI"):  # a database inside the run folder
            here = Path(run.run_dir).resolve()
            mlflow.set_tracking_uri(f"sqlite:///{here / 'mlflow.db'}")
            artifacts = (here / "mlartifacts").as_uri()
        experiment = mlflow.get_experiment_by_name(name)
        if experiment is None:
            experiment_id = mlflow.create_experiment(name, artifact_location=artifacts)
        else:
            experiment_id = experiment.experiment_id
        self.run = mlflow.start_run(experiment_id=experiment_id, run_name=Path(run.run_dir).name)
        mlflow.log_params({k: str(v)[:500] for k, v in flat_config(config).items()})

    def log(self, metrics: dict[str, float], step: int) -> None:
        # mlflow's metric names allow '/', and NaN is stored as such
        self.mlflow.log_metrics(metrics, step=step)

    def text(self, name: str, text: str, step: int) -> None:
        self.mlflow.log_text(text, f"{name}s/iter-{step:07d}.txt")

    def finish(self) -> None:
        self.mlflow.end_run()


CLASSES: dict[str, type[Tracker]] = {
    "wandb": WandbTracker,
    "trackio": TrackioTracker,
    "mlflow": MlflowTracker,
}


def make_trackers(names: list[str]) -> list[Tracker]:
    """One callback per tracker named (``--log-to``); an unknown or uninstalled one is a
    one-line error before training starts."""
    out = []
    for name in dict.fromkeys(names):
        if name not in CLASSES:
            raise MiniGPTError(f"unknown tracker {name!r}; --log-to takes {', '.join(TRACKERS)}")
        if not available(name):
            raise MiniGPTError(f"--log-to {name} needs {name}: {install_hint(name)}")
        out.append(CLASSES[name]())
    return out
