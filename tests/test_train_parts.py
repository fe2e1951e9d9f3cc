"""The trainer's parts on their own: the run set-up's resolved config, ``TrainState`` through
a checkpoint, the stop signals and the loss guard."""

import math
import os
import signal
import sys

import pytest

from minigpt.checkpoint import find_checkpoint
from minigpt.config import TrainConfig
from minigpt.errors import MiniGPTError
from minigpt.training.guards import MAX_CONSECUTIVE_SKIPS, LossGuard
from minigpt.training.signals import StopSignals
from minigpt.training.state import TrainState
from minigpt.training.trainer import Trainer


def test_set_up_resolves_a_copy_and_leaves_the_callers_config_alone(tiny_config):
    config = tiny_config(batch_size="auto", effective_batch=8, vocab_size=0)
    before = config.to_dict()
    trainer = Trainer(config, watch=False)
    assert config.to_dict() == before
    assert trainer.cfg.batch_size * trainer.cfg.grad_accum == 8
    assert trainer.config.model.vocab_size == trainer.data.vocab_size > 0
    assert (config.train.batch_size, config.model.vocab_size) == (0, 0)


def test_train_state_round_trips_through_a_checkpoint(tiny_config):
    trainer = Trainer(tiny_config(eval_interval=5, spike_threshold=3.0), watch=False)
    trainer.run(until=10)
    assert trainer.state.step == 10 and len(trainer.state.history) == 2
    ckpt = find_checkpoint(trainer.run_dir)
    assert TrainState.from_checkpoint(ckpt.iteration, ckpt.state) == trainer.state
    resumed = Trainer(tiny_config(eval_interval=5, spike_threshold=3.0), resume=True)
    assert resumed.state == trainer.state and resumed.state is not trainer.state


def test_a_state_from_before_the_guard_fields_resumes_with_their_defaults():
    old = {"best_val_loss": 2.5, "history": [{"iter": 5, "val": 2.5}]}
    state = TrainState.from_checkpoint(5, old, init_from="runs/base")
    assert state == TrainState(
        step=5, best_val_loss=2.5, history=old["history"], init_from="runs/base"
    )
    assert math.isinf(TrainState.from_checkpoint(0, {}).best_val_loss)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_stop_signals_set_a_flag_while_entered_and_restore_the_handlers():
    before = signal.getsignal(signal.SIGTERM)
    with StopSignals() as signals:
        os.kill(os.getpid(), signal.SIGTERM)
        assert signals.received == signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is before


def test_the_loss_guard_skips_at_most_a_run_of_bad_steps(tmp_path):
    logged = []
    state = TrainState()
    guard = LossGuard(TrainConfig(on_bad_loss="skip"), state, tmp_path, logged.append)
    for _ in range(MAX_CONSECUTIVE_SKIPS):
        guard.reject(guard.problem(float("nan")))
    assert state.skipped_steps == MAX_CONSECUTIVE_SKIPS == len(logged)
    with pytest.raises(MiniGPTError, match="10 bad steps in a row.*no checkpoint was written"):
        guard.reject(guard.problem(float("inf")))
    guard.accept(2.0)
    assert guard.consecutive_skips == 0 and state.loss_ema == 2.0 and state.ema_steps == 1


def test_a_near_zero_loss_rising_by_a_factor_is_not_a_spike(tiny_config):
    """0.0064 -> 0.0199 (3.1x) stopped demo --chat's tuning; only a real rise is a spike."""
    trainer = Trainer(tiny_config(spike_threshold=3.0), watch=False)
    trainer.state.loss_ema, trainer.state.ema_steps = 0.0064, 50
    assert trainer.loss_guard.problem(0.0199) == ""
    assert trainer.loss_guard.problem(0.4) == ""  # 62x, but under half a nat above
    assert "spiked to 0.6000" in trainer.loss_guard.problem(0.6)
    trainer.state.loss_ema = 1.0
    assert "spiked to 3.5000, 3.5x" in trainer.loss_guard.problem(3.5)
