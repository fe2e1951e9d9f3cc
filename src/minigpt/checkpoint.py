"""Checkpoints that load without executing code: safetensors for tensors, JSON for the rest.

A checkpoint is a folder ``RUN/checkpoints/ckpt-NNNNNNN`` holding

- ``model.safetensors``: the weights (tied weights stored once);
- ``optimizer.safetensors``: the optimizer's tensors and the torch RNG state;
- ``state.json``: iteration, config, optimizer hyper-parameters, other RNG states and the
  SHA-256 of both tensor files, written last.

It is written under a temporary name, fsynced and renamed, so a run killed at any moment leaves
either the previous checkpoint or the new one, never half of one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from minigpt.errors import MiniGPTError
from minigpt.tokenizer import TOKENIZER_FILE, Tokenizer, load_tokenizer

CHECKPOINTS_DIR = "checkpoints"
STATE_FILE = "state.json"
MODEL_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.safetensors"
_NAME = re.compile(r"^ckpt-(\d+)$")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def model_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The state dict with tied weights once (safetensors refuses shared storage)."""
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    if getattr(model.config, "tie_embeddings", True) and "lm_head.weight" in state:
        state.pop("lm_head.weight")
    return state


def load_model_state(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if k != "lm_head.weight"]
    if missing or unexpected:
        raise MiniGPTError(
            f"checkpoint weights do not fit the model (missing {missing[:3]}, "
            f"unexpected {unexpected[:3]}); was it written by another model config?"
        )


def optimizer_to_flat(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimizer state dict into tensors (for safetensors) and plain JSON."""
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, per_param in sd["state"].items():
        for name, value in per_param.items():
            if torch.is_tensor(value):
                tensors[f"state.{idx}.{name}"] = value.detach().contiguous().cpu()
            else:
                scalars.setdefault(str(idx), {})[name] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def optimizer_from_flat(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("state."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = value
    for idx, values in meta.get("scalars", {}).items():
        state.setdefault(int(idx), {}).update(values)
    return {"state": state, "param_groups": meta["param_groups"]}


def checkpoint_dirs(run_dir: str | Path) -> list[Path]:
    """This run's checkpoint folders, oldest first."""
    root = Path(run_dir) / CHECKPOINTS_DIR
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def save_checkpoint(
    run_dir: str | Path,
    iteration: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None,
    state: dict[str, Any],
    tokenizer: Tokenizer | None = None,
    keep_last: int = 2,
) -> Path:
    """Write ``ckpt-{iteration}`` atomically and prune older ones beyond ``keep_last``.

    The tokenizer is stored inside the checkpoint too, so a copied checkpoint folder can
    still decode what it generates.
    """
    root = Path(run_dir) / CHECKPOINTS_DIR
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"ckpt-{iteration:07d}"
    tmp = root / f".tmp-{final.name}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file(model_state(model), tmp / MODEL_FILE)
    extra_tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        extra_tensors.update(
            {f"rng.cuda.{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())}
        )
    opt_tensors, opt_meta = optimizer_to_flat(optimizer) if optimizer else ({}, None)
    save_file({**opt_tensors, **extra_tensors}, tmp / OPTIMIZER_FILE)
    full_state = {
        **state,
        "iteration": iteration,
        "optimizer": opt_meta,
        "sha256": {f: sha256_file(tmp / f) for f in (MODEL_FILE, OPTIMIZER_FILE)},
    }
    if tokenizer is not None:
        tokenizer.save(tmp)
    (tmp / STATE_FILE).write_text(json.dumps(full_state, indent=1), encoding="utf-8")
    for f in (MODEL_FILE, OPTIMIZER_FILE, STATE_FILE):
        _fsync(tmp / f)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    _fsync(root)
    for old in checkpoint_dirs(run_dir)[:-keep_last]:
        shutil.rmtree(old, ignore_errors=True)
    return final


class Checkpoint:
    """A verified checkpoint folder: its JSON state plus lazily loaded tensors."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        state_file = self.path / STATE_FILE
        try:
            self.state: dict[str, Any] = json.loads(state_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise MiniGPTError(f"{self.path} is not a checkpoint (no {STATE_FILE})") from None
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise MiniGPTError(f"checkpoint {self.path} is corrupted ({STATE_FILE})") from None
        for name, digest in self.state.get("sha256", {}).items():
            file = self.path / name
            if not file.is_file() or sha256_file(file) != digest:
                raise MiniGPTError(
                    f"checkpoint {self.path} is corrupted ({name} fails its checksum)"
                )

    @property
    def iteration(self) -> int:
        return int(self.state["iteration"])

    def _load(self, name: str) -> dict[str, torch.Tensor]:
        try:
            return load_file(self.path / name)
        except (SafetensorError, OSError) as e:
            raise MiniGPTError(f"checkpoint {self.path} is corrupted ({name}: {e})") from None

    def model_tensors(self) -> dict[str, torch.Tensor]:
        return self._load(MODEL_FILE)

    def optimizer_state(self) -> dict | None:
        if self.state.get("optimizer") is None:
            return None
        return optimizer_from_flat(self._load(OPTIMIZER_FILE), self.state["optimizer"])

    def tokenizer(self) -> Tokenizer:
        """The checkpoint's own tokenizer, else its run folder's."""
        for folder in (self.path, self.path.parent.parent):
            if (folder / TOKENIZER_FILE).is_file():
                return load_tokenizer(folder)
        raise MiniGPTError(f"checkpoint {self.path} has no {TOKENIZER_FILE}; copy the run's one in")

    def restore_rng(self) -> None:
        tensors = self._load(OPTIMIZER_FILE)
        torch.set_rng_state(tensors["rng.torch"])
        cuda = [tensors[k] for k in sorted(tensors) if k.startswith("rng.cuda.")]
        if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)


def find_checkpoint(path: str | Path) -> Checkpoint:
    """A checkpoint folder, or the newest good checkpoint of a run folder."""
    path = Path(path)
    if not path.exists():
        raise MiniGPTError(f"{path} does not exist; pass a run folder or a checkpoint folder")
    if (path / STATE_FILE).is_file():
        return Checkpoint(path)
    candidates = checkpoint_dirs(path)
    if not candidates:
        raise MiniGPTError(f"{path} holds no checkpoints; train first with `minigpt train`")
    errors = []
    for candidate in reversed(candidates):
        try:
            ckpt = Checkpoint(candidate)
        except MiniGPTError as e:
            errors.append(str(e))
            continue
        if errors:
            print(f"warning: skipped {len(errors)} bad checkpoint(s); using {candidate.name}")
        return ckpt
    raise MiniGPTError(f"every checkpoint in {path} is corrupted: {errors[0]}")
