"""``minigpt train``: the training loop.

One optimizer step, as in nanoGPT:

    for each of grad_accum micro-batches:  loss = model(x, y) / grad_accum;  loss.backward()
    clip the gradient norm;  AdamW step at the scheduled learning rate;  zero the gradients

with train/val loss estimates every ``eval_interval`` steps, a log line every ``log_interval``
and a checkpoint every ``checkpoint_interval`` (and at every new best val loss).

Around that loop:

- precision: autocast to bf16/fp16 on the forward pass with fp32 master weights, and a
  gradient scaler for fp16 (``dtype auto``: bf16 where the GPU has it, fp16 on older CUDA
  GPUs, fp32 on CPU); ``torch.compile`` where it helps, with a one-warning eager fallback;
- data: batches read ahead on a background thread (``prefetch.py``), pinned on CUDA;
- safety: ``resume=True`` continues from the newest good checkpoint bit for bit (the batches
  are a pure function of the step, and every RNG is checkpointed); SIGINT (Ctrl-C) and SIGTERM
  finish the current step and write a checkpoint before exiting; a NaN/inf loss or a loss
  spike stops the run before the bad update is applied (or skips the step, ``on_bad_loss
  skip``); optional early stopping on val loss;
- watching: a progress line with ETA, and the callbacks of ``monitor.py`` (metrics.jsonl,
  loss-curve PNG, samples, TensorBoard), MFU on CUDA and a summary at the end.
"""

from __future__ import annotations

import math
import shutil
import signal
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from minigpt._version import __version__
from minigpt.checkpoint import Checkpoint, checkpoint_dirs, find_checkpoint
from minigpt.checkpoint import save_checkpoint as write_checkpoint
from minigpt.config import RunConfig, save_config
from minigpt.data.dataset import Dataset, batch_rng
from minigpt.data.prefetch import BatchPrefetcher
from minigpt.errors import MiniGPTError
from minigpt.evaluation.evaluate import bits_per_byte, perplexity
from minigpt.interop.hf_import import adopt_hf_model, is_hf_ref
from minigpt.model import GPT
from minigpt.model.sizing import flops_per_token
from minigpt.runtime import resolve_compile, resolve_device, resolve_dtype
from minigpt.training.distributed import init as init_distributed
from minigpt.training.monitor import (
    PLOT_FILE,
    SAMPLES_FILE,
    TENSORBOARD_DIR,
    MetricsLog,
    default_callbacks,
    format_bytes,
    format_duration,
    gpu_peak_flops,
    mfu,
    peak_memory,
)
from minigpt.training.optim import lr_at, make_optimizer
from minigpt.training.planner import auto_batch, is_out_of_memory, out_of_memory_message

CONFIG_FILE = "config.toml"
# Spike detection compares each loss with an exponential moving average of the previous ones,
# once it has seen this many steps; skipping more bad steps than this in a row stops the run.
SPIKE_WARMUP_STEPS = 10
LOSS_EMA_DECAY = 0.9
MAX_CONSECUTIVE_SKIPS = 10

Callback = Callable[["Trainer", dict[str, Any]], None]


class TrainingInterrupted(KeyboardInterrupt):
    """Raised by ``Trainer.run`` after SIGINT or SIGTERM, once the checkpoint is written."""

    def __init__(self, signum: int, checkpoint: Path | None) -> None:
        super().__init__(f"{signal.Signals(signum).name}; checkpoint {checkpoint}")
        self.signum = signum
        self.checkpoint = checkpoint


@dataclass
class TrainResult:
    run_dir: Path
    iterations: int
    train_loss: float
    val_loss: float
    best_val_loss: float
    seconds: float
    tokens_per_second: float
    history: list[dict[str, Any]] = field(default_factory=list)
    tokens_seen: int = 0
    best_val_bpb: float = float("nan")
    peak_memory: int = 0
    mfu: float | None = None
    skipped_steps: int = 0
    stop_reason: str = ""

    @property
    def best_val_perplexity(self) -> float:
        return perplexity(self.best_val_loss)


class Trainer:
    """Owns the model, optimizer, data and run folder for one training run.

    ``callbacks`` are called as ``callback(trainer, record)`` after every evaluation, with
    the eval record (``iter``, ``tokens``, ``train``, ``val``, ``val_ppl``, ``val_bpb``,
    ``lr``); one may also define ``on_log(trainer, record)`` for each log line and
    ``close(trainer)`` for the end of the run. ``watch=False`` leaves out the built-in
    watchers (metrics.jsonl, loss plot, samples, TensorBoard; see ``monitor.py``).
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
        self.config = config
        self.fresh_start = force and not resume
        # Where the weights first came from (fine-tuning); kept across resumes for the record.
        self.init_from = str(init_from) if init_from is not None else None
        self.callbacks = list(callbacks or [])
        self.watch = watch
        self.cfg = config.train
        self.progress = progress
        # distributed: join torchrun's process group (a plain run is rank 0 of 1)
        self.dist = init_distributed(resolve_device(self.cfg.device), self.cfg.fsdp)
        if not self.cfg.data:
            raise MiniGPTError(
                "no dataset given; pass --data DATASET_FOLDER (from `minigpt prepare`)"
            )
        self.data = Dataset(self.cfg.data)
        self.run_dir = Path(self.cfg.out_dir)
        self._check_run_dir(resume, force)
        hf_init = None
        if is_hf_ref(init_from) and not (resume and checkpoint_dirs(self.run_dir)):
            fingerprint = self.data.meta.tokenizer.get("fingerprint")
            hf_init = adopt_hf_model(init_from, config.model, fingerprint, self.log)
            config.model = hf_init.config
        self._fit_vocab()
        self.data.check_block_size(config.model.block_size)
        self.tokenizer = self.data.tokenizer()

        torch.manual_seed(self.cfg.seed)
        self.device = self.dist.device
        self.dtype = resolve_dtype(self.cfg.dtype, self.device)
        if self.cfg.batch_size == 0:  # --batch-size auto: the planner fits it to the device
            micro, accum = auto_batch(config, self.device, self.dtype)
            # distributed: the same micro-batch on all ranks, the step's batch shared among them
            self.cfg.batch_size, self.cfg.grad_accum = self.dist.share_batch(micro, accum)
            self.log(
                f"batch size auto: micro-batch {self.cfg.batch_size} x grad_accum "
                f"{self.cfg.grad_accum} fits {self.device}"
            )
        if self.device.type == "cuda":  # TF32 matmuls for whatever still runs in fp32
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        self.model = GPT(config.model).to(self.device)
        self.dist.shard(self.model)  # distributed: FSDP shards before the optimizer is made
        self.optimizer = make_optimizer(self.model, self.cfg, self.device)
        # distributed: FSDP ranks must agree on fp16 overflows
        self.scaler = self.dist.grad_scaler(self.device.type, self.dtype == torch.float16)
        self.step = 0
        self.best_val_loss = float("inf")
        self.history: list[dict[str, Any]] = []
        self.loss_ema: float | None = None
        self.ema_steps = 0
        self.skipped_steps = 0
        self.consecutive_skips = 0
        self.evals_since_best = 0
        self.last_eval: dict[str, Any] | None = None
        # Kept as a tensor: turning it into a float every step would wait for the GPU.
        self.last_grad_norm: torch.Tensor | None = None
        self._stop_signal: int | None = None
        self.prefetcher: BatchPrefetcher | None = None
        self.saved_step: int | None = None
        if resume and checkpoint_dirs(self.run_dir):
            self._restore(find_checkpoint(self.run_dir))
        elif hf_init is not None:
            self.dist.load_model_state(self.model, hf_init.tensors)
        elif init_from is not None:
            ckpt = find_checkpoint(init_from)
            self._check_tokenizer(ckpt)
            self.dist.load_model_state(self.model, ckpt.model_tensors())
            self.log(f"initialised the weights from {ckpt.path}")
        # distributed: all ranks start from the same checkpoint (a shared run folder), and
        # all have checked the run folder before rank 0 writes to it
        self.dist.check_same(
            self.step, "iteration to resume from", "put --out-dir on a filesystem all nodes share"
        )
        self.forward_model: Any = self.dist.wrap(self.model)  # distributed: DDP
        self._compile_ok: set[str] = set()
        if resolve_compile(self.cfg.compile, self.device):
            try:
                self.forward_model = torch.compile(self.forward_model)
            except Exception as e:  # unsupported platform or Python version
                self._compile_failed(e)

    # -- set-up -------------------------------------------------------------------------------

    def _check_run_dir(self, resume: bool, force: bool) -> None:
        if resume or force or not self.run_dir.exists():
            return
        if checkpoint_dirs(self.run_dir) or (self.run_dir / CONFIG_FILE).exists():
            raise MiniGPTError(
                f"{self.run_dir} already holds a run; pass --resume to continue it, "
                "--force to start over, or choose another --out-dir"
            )

    def _clear_previous_run(self) -> None:
        """``force``: the old run's checkpoints and logs go, so none is mistaken for this run's."""
        old = checkpoint_dirs(self.run_dir)
        for path in old:
            shutil.rmtree(path)
        for name in (SAMPLES_FILE, PLOT_FILE):
            (self.run_dir / name).unlink(missing_ok=True)
        shutil.rmtree(self.run_dir / TENSORBOARD_DIR, ignore_errors=True)
        if old:
            self.log(f"--force: removed {len(old)} checkpoint(s) of the previous run")

    def _fit_vocab(self) -> None:
        """The model's vocabulary comes from the dataset; a larger one is kept as padding."""
        model = self.config.model
        if model.vocab_size == 0:
            model.vocab_size = self.data.vocab_size
        elif model.vocab_size < self.data.vocab_size:
            raise MiniGPTError(
                f"vocab_size {model.vocab_size} is smaller than the dataset's tokenizer "
                f"({self.data.vocab_size}); pass --vocab-size 0 to take it from the dataset"
            )

    def _check_tokenizer(self, ckpt: Checkpoint) -> None:
        theirs = ckpt.state.get("tokenizer_fingerprint")
        ours = self.data.meta.tokenizer.get("fingerprint")
        if theirs and ours and theirs != ours:
            raise MiniGPTError(
                f"the dataset {self.data.folder} uses a different tokenizer than checkpoint "
                f"{ckpt.path}; prepare the dataset with the checkpoint's tokenizer"
            )
        model_cfg = ckpt.state.get("config", {}).get("model")
        ours_model = self.config.to_dict()["model"]
        if model_cfg and {k: v for k, v in model_cfg.items() if k != "dropout"} != {
            k: v for k, v in ours_model.items() if k != "dropout"
        }:
            raise MiniGPTError(
                f"checkpoint {ckpt.path} has model shape {model_cfg}, but this run asks for "
                f"{ours_model}; use the checkpoint's config (e.g. --config RUN/config.toml)"
            )

    def _restore(self, ckpt: Checkpoint) -> None:
        self._check_tokenizer(ckpt)
        self.init_from = ckpt.state.get("init_from", self.init_from)
        self.dist.load_model_state(self.model, ckpt.model_tensors())
        opt_state = ckpt.optimizer_state()
        if opt_state is not None:
            self.dist.load_optimizer_state(self.optimizer, opt_state)
        # distributed: keep the run's global batch on another number of ranks
        self.cfg.grad_accum, note = self.dist.resume_grad_accum(ckpt.state, self.cfg.grad_accum)
        if note:
            self.log(note)
        if ckpt.state.get("scaler") and self.scaler.is_enabled():
            self.scaler.load_state_dict(ckpt.state["scaler"])
        ckpt.restore_rng()
        state = ckpt.state
        self.step = ckpt.iteration
        self.best_val_loss = state.get("best_val_loss", float("inf"))
        self.history = state.get("history", [])
        self.loss_ema = state.get("loss_ema")
        self.ema_steps = state.get("ema_steps", 0)
        self.skipped_steps = state.get("skipped_steps", 0)
        self.evals_since_best = state.get("evals_since_best", 0)
        self.log(f"resumed from {ckpt.path} at iteration {self.step}")

    # -- torch.compile with a fallback ---------------------------------------------------------

    def _compile_failed(self, error: Exception) -> None:
        first_line = (str(error).strip().splitlines() or [""])[0][:200]
        self.log(
            f"warning: torch.compile failed ({type(error).__name__}: {first_line}); "
            "training without it (pass --compile false to skip trying)"
        )
        self.forward_model = self.dist.ddp or self.model

    def _guarded(self, fn: Callable[[], Any], mode: str) -> Any:
        """Run ``fn``; the first time per mode with a compiled model, fall back on failure.

        torch.compile compiles lazily, at the first forward (and backward) of each mode, so
        that is where a missing compiler or an unsupported op shows up.
        """
        if self.forward_model in (self.model, self.dist.ddp) or mode in self._compile_ok:
            return fn()
        rng = torch.get_rng_state()
        try:
            out = fn()
        except (MiniGPTError, KeyboardInterrupt):
            raise
        except Exception as e:
            if is_out_of_memory(e):  # not compile's fault: the caller reports it
                raise
            self._compile_failed(e)
            torch.set_rng_state(rng)
            self.optimizer.zero_grad(set_to_none=True)
            return fn()
        self._compile_ok.add(mode)
        return out

    # -- the loop -----------------------------------------------------------------------------

    def autocast(self) -> AbstractContextManager:
        return torch.autocast(
            self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32
        )

    def _cpu_batch(self, split: str, step: int, micro: int) -> tuple[torch.Tensor, torch.Tensor]:
        # distributed: each rank reads its own micro-batches of the step
        rng = batch_rng(
            self.cfg.seed, split, step, self.dist.micro_index(micro, self.cfg.grad_accum)
        )
        return self.data.get_batch(split, self.cfg.batch_size, self.config.model.block_size, rng)

    def batch(self, split: str, step: int, micro: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The micro-batch ``micro`` of step ``step``, on the device (read synchronously)."""
        x, y = self._cpu_batch(split, step, micro)
        return x.to(self.device), y.to(self.device)

    def _train_batch(self, micro: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.prefetcher is None:
            return self.batch("train", self.step, micro)
        return self.prefetcher.get(self.step, micro)

    def train_step(self) -> float:
        """One optimizer step over ``grad_accum`` micro-batches; returns the mean loss.

        A NaN/inf loss or a spike is caught before the update is applied: the run stops with
        a ``MiniGPTError`` or, with ``on_bad_loss skip``, the step is skipped.
        """
        return self._guarded(self._train_step, "train")

    def _train_step(self) -> float:
        self.model.train()
        self.dist.seed_step(self.cfg.seed, self.step)  # distributed: dropout RNG of ranks > 0
        lr = lr_at(self.step, self.cfg)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)  # muon: each group its own lr
        total = torch.zeros((), device=self.device)
        for micro in range(self.cfg.grad_accum):
            x, y = self._train_batch(micro)
            # distributed: all-reduce the gradients only after the last micro-step
            with self.dist.sync_gradients(micro == self.cfg.grad_accum - 1):
                with self.autocast():
                    _, loss = self.forward_model(x, y)
                    loss = loss / self.cfg.grad_accum
                self.scaler.scale(loss).backward()
            total += loss.detach()
        mean_loss = self.dist.mean(total.item())  # distributed: the loss of the whole step
        problem = self._bad_loss(mean_loss)
        if problem:
            self.optimizer.zero_grad(set_to_none=True)
            self._handle_bad_step(problem)
            self.step += 1
            return mean_loss
        self.consecutive_skips = 0
        if self.cfg.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
            self.last_grad_norm = norm.detach()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        self._update_loss_ema(mean_loss)
        return mean_loss

    def _bad_loss(self, loss: float) -> str:
        """Why this loss must not be trained on ('' if it is fine)."""
        if not math.isfinite(loss):
            return f"loss became {loss}"
        threshold = self.cfg.spike_threshold
        ema = self.loss_ema
        warmed_up = ema is not None and self.ema_steps >= SPIKE_WARMUP_STEPS
        if threshold and warmed_up and loss > threshold * ema:
            return (
                f"loss spiked to {loss:.4f}, {loss / ema:.1f}x its recent "
                f"average {ema:.4f} (spike_threshold {threshold:g})"
            )
        return ""

    def _update_loss_ema(self, loss: float) -> None:
        ema = self.loss_ema
        self.loss_ema = loss if ema is None else LOSS_EMA_DECAY * ema + (1 - LOSS_EMA_DECAY) * loss
        self.ema_steps += 1

    def _handle_bad_step(self, problem: str) -> None:
        where = f"{problem} at iteration {self.step + 1}"
        if self.cfg.on_bad_loss == "skip" and self.consecutive_skips < MAX_CONSECUTIVE_SKIPS:
            self.skipped_steps += 1
            self.consecutive_skips += 1
            self.log(f"warning: {where}; skipped that step (no update applied)")
            return
        good = checkpoint_dirs(self.run_dir)
        kept = f"the last good checkpoint is {good[-1]}" if good else "no checkpoint was written"
        if self.consecutive_skips >= MAX_CONSECUTIVE_SKIPS:
            where = f"{MAX_CONSECUTIVE_SKIPS} bad steps in a row, the last: {where}"
        raise MiniGPTError(
            f"{where}; stopped before applying it ({kept}). Lower --lr (now {self.cfg.lr:g}), "
            "raise --warmup-iters or --spike-threshold, or pass --on-bad-loss skip; then "
            "continue with --resume"
        )

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Mean loss over ``eval_iters`` batches of each split, the same batches every time."""
        return self._guarded(self._evaluate, "eval")

    def _evaluate(self) -> dict[str, float]:
        self.model.eval()
        out = {}
        for split in ("train", "val"):
            losses = torch.zeros(self.cfg.eval_iters)
            # distributed: the ranks share the batches out and add up their losses
            for i in self.dist.eval_indices(self.cfg.eval_iters):
                rng = batch_rng(self.cfg.seed + 1, split, 0, i)
                x, y = self.data.get_batch(
                    split, self.cfg.batch_size, self.config.model.block_size, rng
                )
                with torch.no_grad(), self.autocast():
                    _, loss = self.forward_model(x.to(self.device), y.to(self.device))
                if i < self.cfg.eval_iters:
                    losses[i] = loss.item()
            out[split] = self.dist.sum(losses).mean().item()
        self.model.train()
        return out

    def val_bpb(self, loss: float) -> float:
        """Bits per byte of the val split implied by a mean val loss per token."""
        info = self.data.meta.splits.get("val")
        return bits_per_byte(loss, info.tokens, info.bytes) if info else float("nan")

    @property
    def tokens_per_step(self) -> int:
        b, a, t = self.cfg.batch_size, self.cfg.grad_accum, self.config.model.block_size
        return b * a * self.dist.world_size * t  # distributed: all ranks together

    def save(self) -> Path | None:
        """Write a checkpoint: rank 0 writes it (with FSDP every rank helps gather it)."""
        self.saved_step = self.step
        model, optimizer = self.dist.full_state(self.model, self.optimizer)  # distributed
        if model is None:
            return None
        last_eval = self.last_eval if self.last_eval and self.last_eval["iter"] == self.step else {}
        state = {
            "config": self.config.to_dict(),
            "best_val_loss": self.best_val_loss,
            "val_loss": last_eval.get("val"),
            "history": self.history,
            "tokenizer_fingerprint": self.data.meta.tokenizer.get("fingerprint"),
            "init_from": self.init_from,
            "minigpt_version": __version__,
            "tokens_seen": self.step * self.tokens_per_step,
            # Batches and learning rate are pure functions of the step and config; recorded
            # here so the checkpoint says where the sampler and schedule stand.
            "sampler": {"kind": "batch_rng", "seed": self.cfg.seed, "next_step": self.step},
            "schedule": {"step": self.step, "lr": lr_at(self.step, self.cfg)},
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "loss_ema": self.loss_ema,
            "ema_steps": self.ema_steps,
            "skipped_steps": self.skipped_steps,
            "evals_since_best": self.evals_since_best,
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

    def log(self, message: str) -> None:
        if not self.dist.is_main:  # distributed: rank 0 speaks for all
            return
        if self.progress:
            tqdm.write(message)
        else:
            print(message, flush=True)

    # -- signals --------------------------------------------------------------------------------

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self._stop_signal == signal.SIGINT and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: quit now, without saving
        self._stop_signal = signum

    def _install_signal_handlers(self) -> dict[int, Any]:
        """SIGINT and SIGTERM set a flag; the loop saves and stops after the current step."""
        if threading.current_thread() is not threading.main_thread():
            return {}
        old = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            old[sig] = signal.signal(sig, self._on_signal)
        return old

    def _stop_requested(self) -> bool:
        """A signal arrived; under torchrun, on any rank (so that all stop at the same step)."""
        self._stop_signal = self.dist.max(self._stop_signal or 0) or None  # distributed
        return self._stop_signal is not None

    def _stop_for_signal(self, bar: tqdm) -> None:
        signum = self._stop_signal
        assert signum is not None
        bar.close()
        path = None
        if self.step > 0:
            path = (
                self.save() if self.saved_step != self.step else checkpoint_dirs(self.run_dir)[-1]
            )
        name = signal.Signals(signum).name
        where = f"saved {path}; continue with --resume" if path else "nothing to save yet"
        self.log(f"{name} received at iteration {self.step}: {where}")
        raise TrainingInterrupted(signum, path)

    # -- watching ---------------------------------------------------------------------------------

    def _notify(self, hook: str, record: dict[str, Any]) -> None:
        callbacks = self.callbacks if self.dist.is_main else []  # distributed: rank 0 only
        for callback in [*self.watchers, *callbacks]:
            if hook == "eval":
                callback(self, record)
            elif hasattr(callback, hook):
                getattr(callback, hook)(self, record)

    def _log_record(self, losses: list[float], seconds: float, stop: int) -> dict[str, Any]:
        steps = max(1, len(losses))
        tok_s = steps * self.tokens_per_step / seconds if seconds > 0 else 0.0
        record: dict[str, Any] = {
            "iter": self.step,
            "tokens": self.step * self.tokens_per_step,
            "loss": sum(losses) / steps,
            "lr": lr_at(self.step - 1, self.cfg),
            "ms_per_iter": 1000 * seconds / steps,
            "tokens_per_second": tok_s,
            "grad_norm": None if self.last_grad_norm is None else float(self.last_grad_norm),
            "mfu": mfu(self.flops_per_token, tok_s, self.peak_flops),
            "elapsed": time.time() - self.start_time,
        }
        done = self.step - self.start_step
        if done:
            record["eta"] = (stop - self.step) * record["elapsed"] / done
        return record

    def _log_line(self, r: dict[str, Any]) -> str:
        parts = [
            f"iter {r['iter']:6d}/{self.cfg.max_iters}",
            f"loss {r['loss']:.4f}",
            f"lr {r['lr']:.2e}",
            f"{r['ms_per_iter']:7.1f} ms/iter",
            f"{r['tokens_per_second']:9,.0f} tok/s",
        ]
        if self.last_eval:
            parts.insert(2, f"val {self.last_eval['val']:.4f}")
        if r["mfu"] is not None:
            parts.append(f"mfu {100 * r['mfu']:.1f}%")
        if "eta" in r:
            parts.append(f"eta {format_duration(r['eta'])}")
        return " | ".join(parts)

    def _after_eval(self) -> bool:
        """Evaluate, record, notify; True when early stopping says to stop."""
        losses = self.evaluate()
        val = losses["val"]
        improved = val < self.best_val_loss
        self.best_val_loss = min(self.best_val_loss, val)
        self.evals_since_best = 0 if improved else self.evals_since_best + 1
        record = {
            "iter": self.step,
            "tokens": self.step * self.tokens_per_step,
            **losses,
            "val_ppl": math.exp(val) if val < 700 else float("inf"),
            "val_bpb": self.val_bpb(val),
            "lr": lr_at(max(0, self.step - 1), self.cfg),
        }
        self.history.append(record)
        self.last_eval = record
        self._notify("eval", record)
        self.log(
            f"eval {self.step:6d} | train {losses['train']:.4f} | val {val:.4f} "
            f"| ppl {record['val_ppl']:.2f} | {record['val_bpb']:.3f} bpb "
            f"| best val {self.best_val_loss:.4f}"
        )
        if improved:
            self.save()  # every new best is kept (pruning never removes the best)
        patience = self.cfg.early_stop
        return bool(patience) and self.evals_since_best >= patience

    def run(self, until: int | None = None) -> TrainResult:
        """Train to ``max_iters`` (or stop early at ``until``, with a checkpoint)."""
        cfg = self.cfg
        stop = min(cfg.max_iters, until) if until is not None else cfg.max_iters
        self.watchers = []
        if self.dist.is_main:  # distributed: rank 0 writes the run folder and watches
            self.run_dir.mkdir(parents=True, exist_ok=True)
            save_config(self.config, self.run_dir / CONFIG_FILE)
            self.tokenizer.save(self.run_dir)
            if self.fresh_start and self.step == 0:
                self._clear_previous_run()
            MetricsLog(self.run_dir).truncate_after(self.step)
            self.watchers = self.dist.watchers(default_callbacks(self)) if self.watch else []
        self.flops_per_token = flops_per_token(self.config.model)
        peak = gpu_peak_flops(self.device, self.dtype)  # distributed: all GPUs together
        self.peak_flops = peak * self.dist.world_size if peak else peak
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        compiled = "eager" if self.forward_model in (self.model, self.dist.ddp) else "compiled"
        self.log(
            f"training {self.model.num_params() / 1e6:.2f}M parameters on {self.device} "
            f"({str(self.dtype).removeprefix('torch.')}, {compiled}, {self.dist.describe()}), "
            f"{self.tokens_per_step:,} tokens per step, {cfg.max_iters} steps -> {self.run_dir}"
        )
        bar = tqdm(
            total=cfg.max_iters,
            initial=self.step,
            disable=None if self.progress and self.dist.is_main else True,
            unit="it",
            dynamic_ncols=True,
            leave=False,
        )
        self.start_time = time.time()
        self.start_step = self.step
        window_start, window_losses = time.time(), []
        train_loss = val_loss = float("nan")
        stop_reason = ""
        deadline = self.start_time + cfg.max_minutes * 60 if cfg.max_minutes > 0 else math.inf
        self.prefetcher = BatchPrefetcher(
            lambda step, micro: self._cpu_batch("train", step, micro), cfg.grad_accum, self.device
        )
        old_handlers = self._install_signal_handlers()
        try:
            while self.step < stop:
                try:
                    loss = self.train_step()
                except (torch.OutOfMemoryError, RuntimeError) as e:
                    if not is_out_of_memory(e):
                        raise
                    self.optimizer.zero_grad(set_to_none=True)
                    message = out_of_memory_message(self.config, self.device, self.dtype, self.step)
                    raise MiniGPTError(message) from None
                window_losses.append(loss)
                # distributed: all ranks stop at the same step when any runs out of time
                out_of_time = deadline < math.inf and self.dist.any(time.time() >= deadline)
                if out_of_time:  # --max-minutes: finish like a last step (eval, checkpoint)
                    stop = self.step
                    stop_reason = f"time limit of {cfg.max_minutes:g} min reached"
                    self.log(f"{stop_reason} at iteration {stop}")
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr_at(self.step - 1, cfg):.1e}")
                if self._stop_requested():
                    self._stop_for_signal(bar)
                if self.step % cfg.log_interval == 0 or self.step == cfg.max_iters:
                    record = self._log_record(window_losses, time.time() - window_start, stop)
                    self._notify("on_log", record)
                    self.log(self._log_line(record))
                    window_start, window_losses = time.time(), []
                early_stop = False
                if self.step % cfg.eval_interval == 0 or self.step == cfg.max_iters or out_of_time:
                    early_stop = self._after_eval()
                    train_loss, val_loss = self.last_eval["train"], self.last_eval["val"]
                    bar.set_postfix(loss=f"{loss:.4f}", val=f"{val_loss:.4f}")
                due = self.step % cfg.checkpoint_interval == 0 or self.step == stop or early_stop
                if due and self.saved_step != self.step:
                    self.save()
                if early_stop:
                    stop_reason = (
                        f"early stop: val loss has not improved for {cfg.early_stop} evaluations"
                    )
                    self.log(stop_reason)
                    break
                if self._stop_requested():
                    self._stop_for_signal(bar)
        finally:
            bar.close()
            self.prefetcher.close()
            self.prefetcher = None
            for sig, handler in old_handlers.items():
                signal.signal(sig, handler)
            for callback in [*self.watchers, *self.callbacks]:
                if hasattr(callback, "close"):
                    callback.close(self)
        result = self._result(train_loss, val_loss, stop_reason)
        self.log(self.summary(result))
        return result

    def _result(self, train_loss: float, val_loss: float, stop_reason: str) -> TrainResult:
        seconds = time.time() - self.start_time
        tok_s = (self.step - self.start_step) * self.tokens_per_step / seconds if seconds else 0.0
        return TrainResult(
            run_dir=self.run_dir,
            iterations=self.step,
            train_loss=train_loss,
            val_loss=val_loss,
            best_val_loss=self.best_val_loss,
            seconds=seconds,
            tokens_per_second=tok_s,
            history=self.history,
            tokens_seen=self.step * self.tokens_per_step,
            best_val_bpb=self.val_bpb(self.best_val_loss),
            peak_memory=peak_memory(self.device),
            mfu=mfu(self.flops_per_token, tok_s, self.peak_flops),
            skipped_steps=self.skipped_steps,
            stop_reason=stop_reason,
        )

    def summary(self, r: TrainResult) -> str:
        lines = [
            f"summary: {r.iterations} iterations, {r.tokens_seen:,} tokens seen, "
            f"{format_duration(r.seconds)} wall time, {r.tokens_per_second:,.0f} tok/s"
            + (f", mfu {100 * r.mfu:.1f}%" if r.mfu is not None else ""),
            (
                f"  best val loss {r.best_val_loss:.4f} | perplexity {r.best_val_perplexity:.2f} "
                f"| {r.best_val_bpb:.3f} bits per byte (on {self.cfg.eval_iters} batches; "
                f"`minigpt eval {self.run_dir} --data {self.cfg.data}` reads all of val)"
                if math.isfinite(r.best_val_loss)
                else "  no evaluation yet"
            ),
            f"  peak memory {format_bytes(r.peak_memory)}"
            + (" (GPU)" if self.device.type == "cuda" else " (process RSS)")
            + (f" | {r.skipped_steps} bad steps skipped" if r.skipped_steps else ""),
        ]
        return "\n".join(lines)


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
