"""Run by tests/test_distributed.py under torchrun: train, recording every step's loss.

    torchrun --nproc-per-node 2 tests/distributed_worker.py '{"data": ..., ...}' losses.json

Rank 0 writes ``{"losses": [...], "history": [...]}`` to the JSON file;
every rank writes ``saved-rank{r}.json``: the paths its own ``save()`` calls returned.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from minigpt.config import load_config
from minigpt.training.trainer import Trainer


def train_recording(overrides: dict, **kwargs):
    """Train as ``overrides`` say; return the trainer, its result, step losses and save() paths."""
    trainer = Trainer(load_config(overrides=overrides), **kwargs)
    losses, saved = [], []
    step, save = trainer.train_step, trainer.save

    def recording_step() -> float:
        losses.append(step())
        return losses[-1]

    def recording_save():
        saved.append(str(save()))
        return saved[-1]

    trainer.train_step, trainer.save = recording_step, recording_save
    result = trainer.run()
    trainer.dist.close()
    return trainer, result, losses, saved


def main() -> None:
    overrides, out = json.loads(sys.argv[1]), Path(sys.argv[2])
    trainer, result, losses, saved = train_recording(overrides)
    rank = trainer.dist.rank
    (out.parent / f"saved-rank{rank}.json").write_text(json.dumps(saved))
    if rank == 0:
        out.write_text(json.dumps({"losses": losses, "history": result.history}))


if __name__ == "__main__":
    main()
