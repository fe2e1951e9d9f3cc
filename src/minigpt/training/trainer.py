"""``minigpt train``: the training loop.

One optimizer step, as in nanoGPT:

    for each of grad_accum micro-batches:  loss = model(x, y) / grad_accum;  loss.backward()
    clip the gradient norm;  AdamW step at the scheduled learning rate;  zero the gradients

with train/val loss estimates every ``eval_interval`` steps, a log line every ``log_interval``
and a checkpoint every ``checkpoint_interval`` (and at every new best val loss).

The loop is here; its parts are next to it: ``setup.py`` (the run before its first step, on a
resolved copy of the config), ``state.py`` (``TrainState``, what a checkpoint records of the
progress), ``batches.py`` (batches as a pure function of the step, read ahead), ``compile.py``
(``torch.compile`` with an eager fallback), ``guards.py`` (a NaN/inf loss or a spike is caught
before its update), ``signals.py`` (SIGINT/SIGTERM write a checkpoint, then stop),
``callbacks.py`` and ``monitor.py`` (watching), ``report.py`` (log lines, MFU, the summary).
Precision: autocast to bf16/fp16 with fp32 master weights, a gradient scaler for fp16.
``resume=True`` continues from the newest good checkpoint bit for bit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from minigpt._version import __version__
from minigpt.checkpoint import checkpoint_dirs
from minigpt.checkpoint import save_checkpoint as write_checkpoint
from minigpt.config import RunConfig
from minigpt.data.chat_dataset import ChatDataset
from minigpt.errors import MiniGPTError
from minigpt.evaluation.evaluate import bits_per_byte
from minigpt.runtime import is_out_of_memory
from minigpt.training import report
from minigpt.training.batches import Batches
from minigpt.training.callbacks import Callback, RunCallbacks
from minigpt.training.compile import CompileFallback, compile_choice
from minigpt.training.guards import LossGuard
from minigpt.training.monitor import default_callbacks
from minigpt.training.optim import lr_at
from minigpt.training.planner import out_of_memory_message
from minigpt.training.setup import CONFIG_FILE, set_up, write_run_dir
from minigpt.training.sft import model_inputs
from minigpt.training.signals import StopSignals, TrainingInterrupted
from minigpt.training.state import TrainResult
from minigpt.training.stopping import StopRules

__all__ = ["CONFIG_FILE", "Callback", "TrainResult", "Trainer", "TrainingInterrupted", "train"]


class Trainer:
    """Owns the model, optimizer, data and run folder for one training run.

    ``callbacks`` are called after every evaluation (see ``callbacks.py`` for the protocol);
    ``watch=False`` leaves out the built-in watchers (metrics.jsonl, loss plot, samples,
    TensorBoard; see ``monitor.py``). ``config`` is not changed: ``trainer.config`` is the
    resolved copy (vocabulary, ``--batch-size auto``, a Hugging Face model's shape).
    """

    def __init__(
        self,
        config: RunConfig,
        *,
        resume: bool = False,
        force: bool = False,
        init_from: str | Path | None = None,
        progress: bool = False,
        callbacks: list[Callback] | None = None,
        watch: bool = True,
    ) -> None:
        run = set_up(config, resume=resume, force=force, init_from=init_from, progress=progress)
        self.config, self.cfg, self.log = run.config, run.config.train, run.log
        self.dist, self.data, self.tokenizer = run.dist, run.data, run.tokenizer
        self.run_dir, self.device, self.dtype = run.run_dir, run.device, run.dtype
        self.model, self.optimizer, self.scaler = run.model, run.optimizer, run.scaler
        self.state = run.state
        block_size = self.config.model.block_size
        self.batches = Batches(self.data, self.cfg, block_size, self.dist, self.device)
        self.progress, self.watch, self.fresh_start = progress, watch, force and not resume
        self.callbacks = RunCallbacks(callbacks or [], self.dist.is_main)
        self.loss_guard = LossGuard(self.cfg, self.state, self.run_dir, self.log)
        self.speed = report.Speedometer(self.config, self.device, self.dtype, self.dist.world_size)
        self.compile_choice = compile_choice(self.config, self.device, self.tokens_per_step)
        self.forward_model = CompileFallback(  # distributed: DDP around the model
            self.dist.wrap(self.model),
            self.compile_choice.enabled,
            self.log,
            on_fallback=lambda: self.optimizer.zero_grad(set_to_none=True),
        )
        self.stopping = StopRules(self.cfg, self.dist)
        self.last_eval: dict[str, Any] | None = None
        # Kept as a tensor: turning it into a float every step would wait for the GPU.
        self.last_grad_norm: torch.Tensor | None = None
        self.saved_step: int | None = None

    @property
    def step(self) -> int:
        return self.state.step

    @property
    def history(self) -> list[dict[str, Any]]:
        return self.state.history

    @property
    def best_val_loss(self) -> float:
        return self.state.best_val_loss

    @property
    def tokens_per_step(self) -> int:
        return self.speed.tokens_per_step

    # -- one step -------------------------------------------------------------------------------

    def autocast(self) -> AbstractContextManager:
        return torch.autocast(
            self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32
        )

    def batch(self, split: str, step: int, micro: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The micro-batch ``micro`` of step ``step``, on the device (read synchronously)."""
        return self.batches.get(split, step, micro)

    def train_step(self) -> float:
        """One optimizer step over ``grad_accum`` micro-batches; returns the mean loss.

        A NaN/inf loss or a spike is caught before the update is applied: the run stops with
        a ``MiniGPTError`` or, with ``on_bad_loss skip``, the step is skipped.
        """
        return self.forward_model.guard(self._train_step, "train")

    def _train_step(self) -> float:
        self.model.train()
        self.dist.seed_step(self.cfg.seed, self.step)  # distributed: dropout RNG of ranks > 0
        lr = lr_at(self.step, self.cfg)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)  # muon: each group its own lr
        total = torch.zeros((), device=self.device)
        for micro in range(self.cfg.grad_accum):
            args, kwargs = model_inputs(self.batches.train(self.step, micro))
            # distributed: all-reduce the gradients only after the last micro-step
            with self.dist.sync_gradients(micro == self.cfg.grad_accum - 1):
                with self.autocast():
                    _, loss = self.forward_model(*args, **kwargs)
                    loss = loss / self.cfg.grad_accum
                self.scaler.scale(loss).backward()
            total += loss.detach()
        mean_loss = self.dist.mean(total.item())  # distributed: the loss of the whole step
        problem = self.loss_guard.problem(mean_loss)
        if problem:  # stop (MiniGPTError) or skip the step: no update
            self.optimizer.zero_grad(set_to_none=True)
            self.loss_guard.reject(problem)
            self.state.step += 1
            return mean_loss
        if self.cfg.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
            self.last_grad_norm = norm.detach()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.state.step += 1
        self.loss_guard.accept(mean_loss)
        return mean_loss

    # -- evaluate and save ----------------------------------------------------------------------

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Mean loss over ``eval_iters`` batches of each split, the same batches every time."""
        return self.forward_model.guard(self._evaluate, "eval")

    def _evaluate(self) -> dict[str, float]:
        self.model.eval()
        out = {}
        for split in ("train", "val"):
            losses = torch.zeros(self.cfg.eval_iters)
            # distributed: the ranks share the batches out and add up their losses
            for i in self.dist.eval_indices(self.cfg.eval_iters):
                args, kwargs = model_inputs(self.batches.eval(split, i))
                with torch.no_grad(), self.autocast():
                    _, loss = self.forward_model(*args, **kwargs)
                if i < self.cfg.eval_iters:
                    losses[i] = loss.item()
            out[split] = self.dist.sum(losses).mean().item()
        self.model.train()
        return out

    def val_bpb(self, loss: float) -> float:
        """Bits per byte of the val split implied by a mean val loss per token."""
        if isinstance(self.data, ChatDataset):  # the loss is over the replies alone
            replies = self.data.reply_stats["val"]
            return bits_per_byte(loss, replies["tokens"], replies["bytes"])
        info = self.data.meta.splits.get("val")
        return bits_per_byte(loss, info.tokens, info.bytes) if info else float("nan")

    def save(self) -> Path | None:
        """Write a checkpoint: rank 0 writes it (with FSDP every rank helps gather it)."""
        self.saved_step = self.step
        model, optimizer = self.dist.full_state(self.model, self.optimizer)  # distributed
        if model is None:
            return None
        last_eval = self.last_eval if self.last_eval and self.last_eval["iter"] == self.step else {}
        state = {
            "config": self.config.to_dict(),
            **self.state.to_checkpoint(),
            "val_loss": last_eval.get("val"),
            "tokenizer_fingerprint": self.data.meta.tokenizer.get("fingerprint"),
            "minigpt_version": __version__,
            "tokens_seen": self.step * self.tokens_per_step,
            # Batches and learning rate are pure functions of the step and config; recorded
            # here so the checkpoint says where the sampler and schedule stand.
            "sampler": {"kind": "batch_rng", "seed": self.cfg.seed, "next_step": self.step},
            "schedule": {"step": self.step, "lr": lr_at(self.step, self.cfg)},
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "world_size": self.dist.world_size,  # distributed: for resuming on other ranks
        }
        return write_checkpoint(
            self.run_dir,
            self.step,
            model,
            optimizer,
            state,
            self.tokenizer,
            keep_last=self.cfg.keep_checkpoints,
        )

    # -- the run --------------------------------------------------------------------------------

    def run(self, until: int | None = None) -> TrainResult:
        """Train to ``max_iters`` (or stop early at ``until``, with a checkpoint)."""
        cfg = self.cfg
        stop = min(cfg.max_iters, until) if until is not None else cfg.max_iters
        train_loss = val_loss = float("nan")
        stop_reason = ""
        with self._session() as bar:
            while self.step < stop:
                loss = self._train_step_or_explain_oom()
                self.speed.add(loss)
                out_of_time = self.stopping.out_of_time()
                if out_of_time:  # --max-minutes: finish like a last step (eval, checkpoint)
                    stop, stop_reason = self.step, out_of_time
                    self.log(f"{stop_reason} at iteration {stop}")
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr_at(self.step - 1, cfg):.1e}")
                self._stop_if_signalled(bar)
                if self.step % cfg.log_interval == 0 or self.step == cfg.max_iters:
                    self._log_progress(stop)
                early_stop = ""
                if self.step % cfg.eval_interval == 0 or self.step == cfg.max_iters or out_of_time:
                    train_loss, val_loss = self._evaluate_and_record()
                    bar.set_postfix(loss=f"{loss:.4f}", val=f"{val_loss:.4f}")
                    early_stop = self.stopping.early_stop(self.state.evals_since_best)
                if self._checkpoint_due(stop, bool(early_stop)):
                    self.save()
                if early_stop:
                    stop_reason = early_stop
                    self.log(stop_reason)
                    break
                self._stop_if_signalled(bar)
        result = report.result(
            self.speed,
            self.state,
            self.run_dir,
            self.device,
            last_losses=(train_loss, val_loss),
            best_val_bpb=self.val_bpb(self.best_val_loss),
            stop_reason=stop_reason,
        )
        self.log(report.summary(result, self.config, on_gpu=self.device.type == "cuda"))
        return result

    @contextmanager
    def _session(self) -> Iterator[tqdm]:
        """Around the loop: the run folder and the watchers (rank 0), a line on what trains,
        the clocks, the progress bar, batches read ahead and signals caught. Whatever ends the
        loop, the bar, the reader thread, the signal handlers and the callbacks are closed."""
        if self.dist.is_main:  # distributed: rank 0 writes the run folder and watches
            clear = self.fresh_start and self.step == 0  # --force: the old run's files go
            write_run_dir(self.config, self.tokenizer, self.run_dir, self.step, clear, self.log)
            if self.watch:  # distributed: under FSDP rank 0 cannot sample alone
                self.callbacks.watchers = default_callbacks(self, samples=not self.dist.sharded)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        compiled = "compiled" if self.forward_model.compiled else "eager"
        threads = f", {torch.get_num_threads()} threads" if self.device.type == "cpu" else ""
        self.log(
            f"training {self.model.num_params() / 1e6:.2f}M parameters on {self.device} "
            f"({str(self.dtype).removeprefix('torch.')}, {compiled} [{self.compile_choice.reason}]"
            f"{threads}, {self.dist.describe()}), "
            f"{self.tokens_per_step:,} tokens per step, {self.cfg.max_iters} steps -> {self.run_dir}"
        )
        bar = report.progress_bar(
            self.cfg.max_iters, self.step, self.progress and self.dist.is_main
        )
        self.speed.start(self.step)
        self.stopping.start(self.speed.start_time)
        try:
            with self.batches.reading_ahead(), self.stopping.signals:
                yield bar
        finally:
            bar.close()
            self.callbacks.close(self)

    def _train_step_or_explain_oom(self) -> float:
        """``train_step``; running out of memory becomes one line with what to change."""
        try:
            return self.train_step()
        except (torch.OutOfMemoryError, RuntimeError) as e:
            if not is_out_of_memory(e):
                raise
            self.optimizer.zero_grad(set_to_none=True)
            message = out_of_memory_message(self.config, self.device, self.dtype, self.step)
            raise MiniGPTError(message) from None

    def _stop_if_signalled(self, bar: tqdm) -> None:
        """After SIGINT/SIGTERM, save and raise ``TrainingInterrupted`` (distributed: all
        ranks stop at the same step when any was signalled)."""
        signum = self.stopping.signal()
        if signum is None:
            return
        bar.close()
        path = None
        if self.step > 0:
            already = self.saved_step == self.step
            path = checkpoint_dirs(self.run_dir)[-1] if already else self.save()
        where = f"saved {path}; continue with --resume" if path else "nothing to save yet"
        self.log(f"{StopSignals.name(signum)} received at iteration {self.step}: {where}")
        raise TrainingInterrupted(signum, path)

    def _log_progress(self, stop: int) -> None:
        grad_norm = None if self.last_grad_norm is None else float(self.last_grad_norm)
        lr = lr_at(self.step - 1, self.cfg)
        record = self.speed.log_record(self.step, lr, grad_norm, stop)
        self.callbacks.on_log(self, record)
        self.log(report.log_line(record, self.cfg.max_iters, self.last_eval))

    def _evaluate_and_record(self) -> tuple[float, float]:
        """Evaluate, record, tell the callbacks, log; save a new best. The (train, val) losses."""
        losses = self.evaluate()
        val = losses["val"]
        lr = lr_at(max(0, self.step - 1), self.cfg)
        record = report.eval_record(self.step, self.tokens_per_step, losses, self.val_bpb(val), lr)
        improved = self.state.record_eval(record)
        self.last_eval = record
        self.callbacks.on_eval(self, record)
        self.log(report.eval_line(record, self.best_val_loss))
        if improved:
            self.save()  # every new best is kept (pruning never removes the best)
        return losses["train"], val

    def _checkpoint_due(self, stop: int, early_stop: bool) -> bool:
        """Every ``checkpoint_interval`` steps and at the last one; once per step."""
        due = self.step % self.cfg.checkpoint_interval == 0 or self.step == stop or early_stop
        return due and self.saved_step != self.step


def train(
    config: RunConfig,
    *,
    resume: bool = False,
    force: bool = False,
    init_from: str | Path | None = None,
    progress: bool = False,
    callbacks: list[Callback] | None = None,
    watch: bool = True,
) -> TrainResult:
    """Train a model as ``config`` describes; see ``Trainer``."""
    trainer = Trainer(
        config,
        resume=resume,
        force=force,
        init_from=init_from,
        progress=progress,
        callbacks=callbacks,
        watch=watch,
    )
    result = trainer.run()
    trainer.dist.close()  # distributed: wait for every rank, leave the process group
    return result
