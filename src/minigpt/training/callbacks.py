"""What a training callback is, and what it may read of the run.

A callback is called as ``callback(run, record)`` after every evaluation, with the eval record
(``iter``, ``tokens``, ``train``, ``val``, ``val_ppl``, ``val_bpb``, ``lr``). It may also
define ``on_log(run, record)``, called at every log line with the log record, and
``close(run)``, called when the run ends, however it ends. An exception raised by a callback
stops training and propagates (that is how a sweep prunes a trial).

``run`` is the ``Trainer``; callbacks are written against the ``RunView`` protocol, so that
they (and the monitors of ``monitor.py``) need not import the trainer.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from minigpt.config import RunConfig, TrainConfig

if TYPE_CHECKING:  # annotations only: trackers.py, which the CLI imports, stays light
    from minigpt.data.tokenizer import Tokenizer
    from minigpt.model import GPT


class RunView(Protocol):
    """The parts of a training run a callback may read."""

    config: RunConfig
    cfg: TrainConfig
    run_dir: Path
    model: GPT
    tokenizer: Tokenizer

    @property
    def step(self) -> int: ...

    @property
    def history(self) -> list[dict[str, Any]]: ...

    @property
    def best_val_loss(self) -> float: ...

    def log(self, message: str) -> None: ...


class Callback(Protocol):
    def __call__(self, run: RunView, record: dict[str, Any]) -> None: ...


class RunCallbacks:
    """A run's callbacks: the built-in watchers first, then the caller's.

    distributed: only rank 0 watches (``watchers`` stay empty elsewhere) and calls the caller's
    callbacks at evaluations and log lines; every rank closes them.
    """

    def __init__(self, callbacks: Iterable[Callback], is_main: bool) -> None:
        self.watchers: list[Callback] = []  # made when the run starts (see ``monitor.py``)
        self.callbacks = list(callbacks)
        self.is_main = is_main

    def _called(self) -> list[Callback]:
        return [*self.watchers, *(self.callbacks if self.is_main else [])]

    def on_eval(self, run: RunView, record: dict[str, Any]) -> None:
        for callback in self._called():
            callback(run, record)

    def on_log(self, run: RunView, record: dict[str, Any]) -> None:
        for callback in self._called():
            if hasattr(callback, "on_log"):
                callback.on_log(run, record)

    def close(self, run: RunView) -> None:
        for callback in [*self.watchers, *self.callbacks]:
            if hasattr(callback, "close"):
                callback.close(run)
