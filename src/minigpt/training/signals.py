"""Ctrl-C and SIGTERM during training: finish the step, write a checkpoint, then stop.

A cluster's scheduler sends SIGTERM before it takes the machine away, and a person presses
Ctrl-C; either way the last minutes of training should not be lost. ``StopSignals`` turns
both into a flag the training loop reads between steps (a second Ctrl-C still quits at once,
without saving). ``TrainingInterrupted`` is raised once the checkpoint is written; the CLI
turns it into the shell's exit code (130 for Ctrl-C, 143 for SIGTERM).
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any


class TrainingInterrupted(KeyboardInterrupt):
    """Raised by ``Trainer.run`` after SIGINT or SIGTERM, once the checkpoint is written."""

    def __init__(self, signum: int, checkpoint: Path | None) -> None:
        super().__init__(f"{signal.Signals(signum).name}; checkpoint {checkpoint}")
        self.signum = signum
        self.checkpoint = checkpoint


class StopSignals:
    """While entered, SIGINT and SIGTERM set ``received`` instead of killing the process.

    Handlers can only be installed from the main thread; elsewhere (a run started from a
    worker thread) the signals keep their usual effect.
    """

    WATCHED = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.received == signal.SIGINT and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: quit now, without saving
        self.received = signum

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._on_signal) for sig in self.WATCHED}
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    @staticmethod
    def name(signum: int) -> str:
        return signal.Signals(signum).name
