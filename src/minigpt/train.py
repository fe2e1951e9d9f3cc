"""``minigpt train``: the training loop.

One optimizer step, as in nanoGPT:

    for each of grad_accum micro-batches:  loss = model(x, y) / grad_accum;  loss.backward()
    clip the gradient norm;  AdamW step at the scheduled learning rate;  zero the gradients

with train/val loss estimates every ``eval_interval`` steps, a log line every ``log_interval``
and a checkpoint every ``checkpoint_interval``. ``resume=True`` continues from the newest good
checkpoint of the run folder, reading exactly the batches the uninterrupted run would have.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

import minigpt
from minigpt.checkpoint import Checkpoint, checkpoint_dirs, find_checkpoint, load_model_state
from minigpt.checkpoint import save_checkpoint as write_checkpoint
from minigpt.config import RunConfig, save_config
from minigpt.dataset import Dataset, batch_rng
from minigpt.errors import MiniGPTError
from minigpt.hf import adopt_hf_model, is_hf_ref
from minigpt.model import GPT
from minigpt.optim import lr_at, make_optimizer
from minigpt.planner import auto_batch, is_out_of_memory, out_of_memory_message

CONFIG_FILE = "config.toml"


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks cuda, then mps, then cpu."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise MiniGPTError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise MiniGPTError("device cuda requested but no CUDA GPU is available; use --device cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise MiniGPTError("device mps requested but MPS is not available; use --device cpu")
    return device


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """``auto``: bf16 on GPUs that support it, fp16 on older CUDA GPUs, fp32 on CPU."""
    if name == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


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


class Trainer:
    """Owns the model, optimizer, data and run folder for one training run."""

    def __init__(
        self,
        config: RunConfig,
        *,
        resume: bool = False,
        force: bool = False,
        init_from: str | Path | None = None,
        progress: bool = False,
        callbacks: list[Callable[[Trainer, dict[str, Any]], None]] | None = None,
    ) -> None:
        self.config = config
        # Called after every evaluation with its record ({"iter", "train", "val", ...});
        # metrics files, plots and sweep pruning hook in here.
        self.callbacks = list(callbacks or [])
        self.cfg = config.train
        self.progress = progress
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
        self.device = resolve_device(self.cfg.device)
        self.dtype = resolve_dtype(self.cfg.dtype, self.device)
        if self.cfg.batch_size == 0:  # --batch-size auto: the planner fits it to the device
            self.cfg.batch_size, self.cfg.grad_accum = auto_batch(config, self.device, self.dtype)
            self.log(
                f"batch size auto: micro-batch {self.cfg.batch_size} x grad_accum "
                f"{self.cfg.grad_accum} fits {self.device}"
            )
        self.model = GPT(config.model).to(self.device)
        self.optimizer = make_optimizer(self.model, self.cfg, self.device)
        self.scaler = torch.amp.GradScaler(
            self.device.type, enabled=self.dtype == torch.float16 and self.device.type == "cuda"
        )
        self.step = 0
        self.best_val_loss = float("inf")
        self.history: list[dict[str, Any]] = []
        if resume and checkpoint_dirs(self.run_dir):
            self._restore(find_checkpoint(self.run_dir))
        elif hf_init is not None:
            load_model_state(self.model, hf_init.tensors)
        elif init_from is not None:
            ckpt = find_checkpoint(init_from)
            self._check_tokenizer(ckpt)
            load_model_state(self.model, ckpt.model_tensors())
        self.forward_model = torch.compile(self.model) if self.cfg.compile else self.model

    # -- set-up -------------------------------------------------------------------------------

    def _check_run_dir(self, resume: bool, force: bool) -> None:
        if resume or force or not self.run_dir.exists():
            return
        if checkpoint_dirs(self.run_dir) or (self.run_dir / CONFIG_FILE).exists():
            raise MiniGPTError(
                f"{self.run_dir} already holds a run; pass --resume to continue it, "
                "--force to start over, or choose another --out-dir"
            )

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
        load_model_state(self.model, ckpt.model_tensors())
        opt_state = ckpt.optimizer_state()
        if opt_state is not None:
            self.optimizer.load_state_dict(opt_state)
        ckpt.restore_rng()
        self.step = ckpt.iteration
        self.best_val_loss = ckpt.state.get("best_val_loss", float("inf"))
        self.history = ckpt.state.get("history", [])
        self.log(f"resumed from {ckpt.path} at iteration {self.step}")

    # -- the loop -----------------------------------------------------------------------------

    def autocast(self) -> Any:
        if self.dtype == torch.float32:
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def batch(self, split: str, step: int, micro: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = batch_rng(self.cfg.seed, split, step, micro)
        x, y = self.data.get_batch(split, self.cfg.batch_size, self.config.model.block_size, rng)
        return x.to(self.device), y.to(self.device)

    def train_step(self) -> float:
        """One optimizer step over ``grad_accum`` micro-batches; returns the mean loss."""
        self.model.train()
        lr = lr_at(self.step, self.cfg)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        total = 0.0
        for micro in range(self.cfg.grad_accum):
            x, y = self.batch("train", self.step, micro)
            with self.autocast():
                _, loss = self.forward_model(x, y)
                loss = loss / self.cfg.grad_accum
            self.scaler.scale(loss).backward()
            total += loss.item()
        if self.cfg.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        return total

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Mean loss over ``eval_iters`` batches of each split, the same batches every time."""
        self.model.eval()
        out = {}
        for split in ("train", "val"):
            losses = torch.zeros(self.cfg.eval_iters)
            for i in range(self.cfg.eval_iters):
                rng = batch_rng(self.cfg.seed + 1, split, 0, i)
                x, y = self.data.get_batch(
                    split, self.cfg.batch_size, self.config.model.block_size, rng
                )
                with self.autocast():
                    _, loss = self.forward_model(x.to(self.device), y.to(self.device))
                losses[i] = loss.item()
            out[split] = losses.mean().item()
        self.model.train()
        return out

    def save(self) -> Path:
        state = {
            "config": self.config.to_dict(),
            "best_val_loss": self.best_val_loss,
            "history": self.history,
            "tokenizer_fingerprint": self.data.meta.tokenizer.get("fingerprint"),
            "minigpt_version": minigpt.__version__,
        }
        return write_checkpoint(
            self.run_dir, self.step, self.model, self.optimizer, state, self.tokenizer
        )

    def log(self, message: str) -> None:
        if self.progress:
            tqdm.write(message)
        else:
            print(message, flush=True)

    def run(self, until: int | None = None) -> TrainResult:
        """Train to ``max_iters`` (or stop early at ``until``, with a checkpoint)."""
        cfg = self.cfg
        stop = min(cfg.max_iters, until) if until is not None else cfg.max_iters
        self.run_dir.mkdir(parents=True, exist_ok=True)
        save_config(self.config, self.run_dir / CONFIG_FILE)
        self.tokenizer.save(self.run_dir)
        tokens_per_step = cfg.batch_size * cfg.grad_accum * self.config.model.block_size
        self.log(
            f"training {self.model.num_params() / 1e6:.2f}M parameters on {self.device} "
            f"({str(self.dtype).removeprefix('torch.')}), {tokens_per_step:,} tokens per step, "
            f"{cfg.max_iters} steps -> {self.run_dir}"
        )
        bar = tqdm(
            total=cfg.max_iters,
            initial=self.step,
            disable=None if self.progress else True,
            unit="it",
            dynamic_ncols=True,
            leave=False,
        )
        start = time.time()
        start_step = self.step
        window_start, window_steps = time.time(), 0
        train_loss = val_loss = float("nan")
        deadline = start + cfg.max_minutes * 60 if cfg.max_minutes > 0 else math.inf
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
                if not math.isfinite(loss):
                    raise MiniGPTError(
                        f"loss became {loss} at iteration {self.step}; lower --lr "
                        f"(now {cfg.lr}) or resume from the last checkpoint"
                    )
                out_of_time = time.time() >= deadline
                if out_of_time:  # --max-minutes: finish like a last step (eval, checkpoint)
                    stop = self.step
                    self.log(f"time limit of {cfg.max_minutes:g} min reached at iteration {stop}")
                window_steps += 1
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}")
                if self.step % cfg.log_interval == 0 or self.step == cfg.max_iters:
                    dt = (time.time() - window_start) / window_steps
                    self.log(
                        f"iter {self.step:6d} | loss {loss:.4f} | lr {lr_at(self.step - 1, cfg):.2e} "
                        f"| {dt * 1000:7.1f} ms/iter | {tokens_per_step / dt:9,.0f} tok/s"
                    )
                    window_start, window_steps = time.time(), 0
                if self.step % cfg.eval_interval == 0 or self.step == cfg.max_iters or out_of_time:
                    losses = self.evaluate()
                    train_loss, val_loss = losses["train"], losses["val"]
                    self.best_val_loss = min(self.best_val_loss, val_loss)
                    record = {"iter": self.step, **losses}
                    self.history.append(record)
                    for callback in self.callbacks:
                        callback(self, record)
                    self.log(
                        f"eval {self.step:6d} | train {train_loss:.4f} | val {val_loss:.4f} "
                        f"| best val {self.best_val_loss:.4f}"
                    )
                if self.step % cfg.checkpoint_interval == 0 or self.step == stop:
                    self.save()
        except KeyboardInterrupt:
            bar.close()
            if self.step > start_step:
                path = self.save()
                self.log(f"interrupted: saved {path}; continue with --resume")
            raise
        bar.close()
        seconds = time.time() - start
        steps = self.step - start_step
        return TrainResult(
            run_dir=self.run_dir,
            iterations=self.step,
            train_loss=train_loss,
            val_loss=val_loss,
            best_val_loss=self.best_val_loss,
            seconds=seconds,
            tokens_per_second=steps * tokens_per_step / seconds if seconds > 0 else 0.0,
            history=self.history,
        )


def train(
    config: RunConfig,
    *,
    resume: bool = False,
    force: bool = False,
    init_from: str | Path | None = None,
    progress: bool = False,
    callbacks: list[Callable[[Trainer, dict[str, Any]], None]] | None = None,
) -> TrainResult:
    """Train a model as ``config`` describes; see ``Trainer``."""
    trainer = Trainer(
        config,
        resume=resume,
        force=force,
        init_from=init_from,
        progress=progress,
        callbacks=callbacks,
    )
    return trainer.run()
