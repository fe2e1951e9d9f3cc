"""Setting up a training run: everything the trainer needs before its first step.

``set_up`` joins the ranks (under torchrun), opens the dataset, checks the run folder, adopts
a Hugging Face model or a checkpoint's weights (``init_from``), fits the vocabulary, picks the
batch size (``--batch-size auto``), builds the model, the optimizer and the gradient scaler,
and restores them with the ``TrainState`` from the newest checkpoint (``resume``). What the
config left open is settled in a resolved copy (``RunSetup.config``); the caller's config is
not changed.
"""

from __future__ import annotations

import copy
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from minigpt.checkpoint import Checkpoint, checkpoint_dirs, find_checkpoint
from minigpt.config import RunConfig, save_config
from minigpt.data.chat_dataset import ChatDataset
from minigpt.data.dataset import Dataset
from minigpt.data.tokenizer import Tokenizer
from minigpt.errors import MiniGPTError
from minigpt.interop.hf_import import adopt_hf_model, is_hf_ref
from minigpt.model import GPT
from minigpt.runtime import resolve_device, resolve_dtype, use_physical_cores
from minigpt.training.distributed import Distributed
from minigpt.training.distributed import init as init_distributed
from minigpt.training.memcheck import check_training_ram
from minigpt.training.monitor import PLOT_FILE, SAMPLES_FILE, TENSORBOARD_DIR, MetricsLog
from minigpt.training.optim import make_optimizer
from minigpt.training.planner import auto_batch
from minigpt.training.sft import adopt_checkpoint, base_fingerprint, fit_vocab, open_training_data
from minigpt.training.state import TrainState

CONFIG_FILE = "config.toml"


class Console:
    """Prints the run's messages: on rank 0 only, and above the progress bar when there is one."""

    def __init__(self, is_main: bool, progress: bool) -> None:
        self.is_main, self.progress = is_main, progress

    def __call__(self, message: str) -> None:
        if not self.is_main:  # distributed: rank 0 speaks for all
            return
        if self.progress:
            tqdm.write(message)
        else:
            print(message, flush=True)


@dataclass
class RunSetup:
    """A run ready to train: the resolved config, its parts, and where it stands."""

    config: RunConfig
    dist: Distributed
    data: Dataset | ChatDataset
    tokenizer: Tokenizer
    run_dir: Path
    device: torch.device
    dtype: torch.dtype
    model: GPT
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    state: TrainState
    log: Callable[[str], None]


def set_up(
    config: RunConfig,
    *,
    resume: bool = False,
    force: bool = False,
    init_from: str | Path | None = None,
    progress: bool = False,
) -> RunSetup:
    """Build the run ``config`` describes (see the module's docstring); the order matters for
    bit-exact resumes: the seed is set before the batch planner and the model draw from it."""
    config = copy.deepcopy(config)  # resolved below; the caller's stays as given
    cfg = config.train
    # distributed: join torchrun's process group (a plain run is rank 0 of 1)
    dist = init_distributed(resolve_device(cfg.device), cfg.fsdp)
    log = Console(dist.is_main, progress)
    if not cfg.data:
        raise MiniGPTError("no dataset given; pass --data DATASET_FOLDER (from `minigpt prepare`)")
    data = open_training_data(cfg.data, cfg.data_format, cfg.chat_batching)
    run_dir = Path(cfg.out_dir)
    _check_run_dir(run_dir, resume, force)
    resuming = resume and bool(checkpoint_dirs(run_dir))
    init_tensors = None
    if is_hf_ref(init_from) and not resuming:
        base = base_fingerprint(data)  # a chat dataset may extend the model's tokenizer
        fingerprint = base or data.meta.tokenizer.get("fingerprint")
        hf_init = adopt_hf_model(init_from, config.model, fingerprint, log)
        config.model, init_tensors = fit_vocab(hf_init.config, hf_init.tensors, data, log)
    elif init_from is not None and isinstance(data, ChatDataset):
        # fine-tuning takes the model's shape (also when resuming: the flags are the same)
        config.model, tensors = adopt_checkpoint(
            find_checkpoint(init_from), config.model, data, log
        )
        init_tensors = None if resuming else tensors
    _fit_vocab(config, data)
    data.check_block_size(config.model.block_size)
    tokenizer = data.tokenizer()

    torch.manual_seed(cfg.seed)
    device = dist.device
    dtype = resolve_dtype(cfg.dtype, device)
    if cfg.batch_size == 0:  # --batch-size auto: the planner fits it to the device
        micro, accum = auto_batch(config, device, dtype)
        # distributed: the same micro-batch on all ranks, the step's batch shared among them
        cfg.batch_size, cfg.grad_accum = dist.share_batch(micro, accum)
        log(
            f"batch size auto: micro-batch {cfg.batch_size} x grad_accum "
            f"{cfg.grad_accum} fits {device}"
        )
    if device.type == "cpu":
        check_training_ram(config, dtype)  # before the model exists: refuse what cannot fit
        use_physical_cores()  # one intra-op thread per physical core (no SMT siblings)
    if device.type == "cuda":  # TF32 matmuls for whatever still runs in fp32
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    model = GPT(config.model).to(device)
    dist.shard(model)  # distributed: FSDP shards before the optimizer is made
    optimizer = make_optimizer(model, cfg, device)
    # distributed: FSDP ranks must agree on fp16 overflows
    scaler = dist.grad_scaler(device.type, dtype == torch.float16)
    state = TrainState(init_from=str(init_from) if init_from is not None else None)
    run = RunSetup(
        config=config,
        dist=dist,
        data=data,
        tokenizer=tokenizer,
        run_dir=run_dir,
        device=device,
        dtype=dtype,
        model=model,
        optimizer=optimizer,
        scaler=scaler,
        state=state,
        log=log,
    )
    if resuming:
        _restore(run, find_checkpoint(run_dir))
    elif init_tensors is not None:
        dist.load_model_state(model, init_tensors)
    elif init_from is not None:
        ckpt = find_checkpoint(init_from)
        _check_compatible(run, ckpt)
        dist.load_model_state(model, ckpt.model_tensors())
        log(f"initialised the weights from {ckpt.path}")
    # distributed: all ranks start from the same checkpoint (a shared run folder), and
    # all have checked the run folder before rank 0 writes to it
    dist.check_same(
        run.state.step, "iteration to resume from", "put --out-dir on a filesystem all nodes share"
    )
    return run


def write_run_dir(
    config: RunConfig,
    tokenizer: Tokenizer,
    run_dir: Path,
    step: int,
    clear: bool,
    log: Callable[[str], None],
) -> None:
    """Write the run folder's config and tokenizer; drop what is past ``step`` in its metrics.

    ``clear`` (``--force``): the old run's checkpoints and logs go, so that none is mistaken
    for this run's.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(config, run_dir / CONFIG_FILE)
    tokenizer.save(run_dir)
    if clear:
        old = checkpoint_dirs(run_dir)
        for path in old:
            shutil.rmtree(path)
        for name in (SAMPLES_FILE, PLOT_FILE):
            (run_dir / name).unlink(missing_ok=True)
        shutil.rmtree(run_dir / TENSORBOARD_DIR, ignore_errors=True)
        if old:
            log(f"--force: removed {len(old)} checkpoint(s) of the previous run")
    MetricsLog(run_dir).truncate_after(step)


def _check_run_dir(run_dir: Path, resume: bool, force: bool) -> None:
    if resume or force or not run_dir.exists():
        return
    if checkpoint_dirs(run_dir) or (run_dir / CONFIG_FILE).exists():
        raise MiniGPTError(
            f"{run_dir} already holds a run; pass --resume to continue it, "
            "--force to start over, or choose another --out-dir"
        )


def _fit_vocab(config: RunConfig, data: Dataset) -> None:
    """The model's vocabulary comes from the dataset; a larger one is kept as padding."""
    model = config.model
    if model.vocab_size == 0:
        model.vocab_size = data.vocab_size
    elif model.vocab_size < data.vocab_size:
        raise MiniGPTError(
            f"vocab_size {model.vocab_size} is smaller than the dataset's tokenizer "
            f"({data.vocab_size}); pass --vocab-size 0 to take it from the dataset"
        )


def _check_compatible(run: RunSetup, ckpt: Checkpoint) -> None:
    """A checkpoint's weights fit this run: same tokenizer, same model shape."""
    theirs = ckpt.state.get("tokenizer_fingerprint")
    ours = run.data.meta.tokenizer.get("fingerprint")
    if theirs and ours and theirs != ours:
        raise MiniGPTError(
            f"the dataset {run.data.folder} uses a different tokenizer than checkpoint "
            f"{ckpt.path}; prepare the dataset with the checkpoint's tokenizer"
        )
    model_cfg = ckpt.state.get("config", {}).get("model")
    ours_model = run.config.to_dict()["model"]
    if model_cfg and {k: v for k, v in model_cfg.items() if k != "dropout"} != {
        k: v for k, v in ours_model.items() if k != "dropout"
    }:
        raise MiniGPTError(
            f"checkpoint {ckpt.path} has model shape {model_cfg}, but this run asks for "
            f"{ours_model}; use the checkpoint's config (e.g. --config RUN/config.toml)"
        )


def _restore(run: RunSetup, ckpt: Checkpoint) -> None:
    """Continue from ``ckpt``: weights, optimizer, scaler, random generators and state."""
    _check_compatible(run, ckpt)
    cfg = run.config.train
    run.dist.load_model_state(run.model, ckpt.model_tensors())
    opt_state = ckpt.optimizer_state()
    if opt_state is not None:
        run.dist.load_optimizer_state(run.optimizer, opt_state)
    # distributed: keep the run's global batch on another number of ranks
    cfg.grad_accum, note = run.dist.resume_grad_accum(ckpt.state, cfg.grad_accum)
    if note:
        run.log(note)
    if ckpt.state.get("scaler") and run.scaler.is_enabled():
        run.scaler.load_state_dict(ckpt.state["scaler"])
    ckpt.restore_rng()
    run.state = TrainState.from_checkpoint(ckpt.iteration, ckpt.state, run.state.init_from)
    run.log(f"resumed from {ckpt.path} at iteration {run.state.step}")
