"""Checkpoints that load without executing code: safetensors for tensors, JSON for the rest.

A checkpoint is a folder ``RUN/checkpoints/ckpt-NNNNNNN`` holding

- ``model.safetensors``: the weights (tied weights stored once);
- ``optimizer.safetensors``: the optimizer's tensors (any torch optimizer's state dict,
  flattened) and the torch and CUDA RNG states;
- ``state.json``: iteration, config, optimizer hyper-parameters, gradient-scaler and schedule
  state, the python and numpy RNG states, the data sampler's position, the val loss, and the
  SHA-256 of both tensor files, written last.

It is written under a temporary name, fsynced and renamed, so a run killed at any moment leaves
either the previous checkpoint or the new one, never half of one; a disk that fills while it
is written removes the partial folder and says so in one line, the earlier checkpoints intact. Nothing is ever unpickled:
safetensors and JSON cannot run code when loaded, and pickle files are refused outright.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from minigpt.data.tokenizer import TOKENIZER_FILE, Tokenizer, load_tokenizer
from minigpt.errors import MiniGPTError, out_of_room

CHECKPOINTS_DIR = "checkpoints"
STATE_FILE = "state.json"
MODEL_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.safetensors"
_NAME = re.compile(r"^ckpt-(\d+)$")
# First bytes of files that would execute code when loaded: a raw pickle, torch.save's zip.
_PICKLE_MAGIC = (b"\x80", b"PK\x03\x04")


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
    groups = []
    for i, group in enumerate(sd["param_groups"]):
        plain = {}
        for name, value in group.items():
            if torch.is_tensor(value):  # e.g. lr as a tensor (capturable optimizers)
                tensors[f"group.{i}.{name}"] = value.detach().contiguous().cpu()
            else:
                plain[name] = value
        groups.append(plain)
    return tensors, {"param_groups": groups, "scalars": scalars}


def optimizer_from_flat(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("state."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = value
    for idx, values in meta.get("scalars", {}).items():
        state.setdefault(int(idx), {}).update(values)
    groups = [dict(g) for g in meta["param_groups"]]
    for key, value in tensors.items():
        if key.startswith("group."):
            _, i, name = key.split(".", 2)
            groups[int(i)][name] = value
    return {"state": state, "param_groups": groups}


def rng_states() -> dict[str, Any]:
    """The python and numpy global RNG states as JSON (torch's go to safetensors)."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": [version, list(internal), gauss],
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
    }


def set_rng_states(states: dict[str, Any]) -> None:
    if "python" in states:
        version, internal, gauss = states["python"]
        random.setstate((version, tuple(internal), gauss))
    if "numpy" in states:
        kind, keys, pos, has_gauss, cached = states["numpy"]
        np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))


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
    """Write ``ckpt-{iteration}`` atomically; keep the newest ``keep_last`` and the best.

    ``state`` is any JSON; a ``val_loss`` in it marks the checkpoint as a candidate for
    "best", which pruning never removes. The tokenizer is stored inside the checkpoint too,
    so a copied checkpoint folder can still decode what it generates.
    """
    root = Path(run_dir) / CHECKPOINTS_DIR
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"ckpt-{iteration:07d}"
    tmp = root / f".tmp-{final.name}"
    shutil.rmtree(tmp, ignore_errors=True)
    weights = model_state(model)
    extra_tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        extra_tensors.update(
            {f"rng.cuda.{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())}
        )
    opt_tensors, opt_meta = optimizer_to_flat(optimizer) if optimizer else ({}, None)
    try:
        tmp.mkdir()
        save_file(weights, tmp / MODEL_FILE)
        save_file({**opt_tensors, **extra_tensors}, tmp / OPTIMIZER_FILE)
        full_state = {
            **state,
            "iteration": iteration,
            "optimizer": opt_meta,
            "rng": rng_states(),
            "sha256": {f: sha256_file(tmp / f) for f in (MODEL_FILE, OPTIMIZER_FILE)},
        }
        if tokenizer is not None:
            tokenizer.save(tmp)
        (tmp / STATE_FILE).write_text(json.dumps(full_state, indent=1), encoding="utf-8")
        for f in (MODEL_FILE, OPTIMIZER_FILE, STATE_FILE):
            _fsync(tmp / f)
    except (OSError, SafetensorError) as e:
        shutil.rmtree(tmp, ignore_errors=True)
        tensors = (*weights.values(), *opt_tensors.values())
        why = out_of_room(e, tmp, sum(t.numel() * t.element_size() for t in tensors))
        if why is None:
            raise
        earlier = checkpoint_dirs(run_dir)
        kept = (
            f"the newest earlier one, {earlier[-1]}, is intact"
            if earlier
            else "there is no earlier one"
        )
        raise MiniGPTError(
            f"checkpoint {final.name} not saved: {why}; {kept}. Free some space, then "
            "continue with --resume"
        ) from None
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    _fsync(root)
    prune_checkpoints(run_dir, keep_last)
    return final


def _val_loss(path: Path) -> float:
    """A checkpoint's recorded val loss (inf when unknown or unreadable)."""
    try:
        value = json.loads((path / STATE_FILE).read_text(encoding="utf-8")).get("val_loss")
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return float("inf")
    return float(value) if value is not None else float("inf")


def best_checkpoint_dir(run_dir: str | Path) -> Path | None:
    """The checkpoint folder with the lowest recorded val loss (the newest on ties)."""
    scored = [(_val_loss(p), -i, p) for i, p in enumerate(checkpoint_dirs(run_dir))]
    scored = [s for s in scored if math.isfinite(s[0])]
    return min(scored)[2] if scored else None


def prune_checkpoints(run_dir: str | Path, keep_last: int) -> None:
    """Delete all but the newest ``keep_last`` checkpoints and the best by val loss."""
    keep = set(checkpoint_dirs(run_dir)[-max(1, keep_last) :])
    best = best_checkpoint_dir(run_dir)
    if best is not None:
        keep.add(best)
    for old in checkpoint_dirs(run_dir):
        if old not in keep:
            shutil.rmtree(old, ignore_errors=True)


class Checkpoint:
    """A verified checkpoint folder: its JSON state plus lazily loaded tensors."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        for name in (MODEL_FILE, OPTIMIZER_FILE):
            refuse_pickle(self.path / name)
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
        """Python, numpy, torch and (same GPU count only) CUDA generators, as when saved."""
        set_rng_states(self.state.get("rng", {}))
        tensors = self._load(OPTIMIZER_FILE)
        torch.set_rng_state(tensors["rng.torch"])
        cuda = [tensors[k] for k in sorted(tensors) if k.startswith("rng.cuda.")]
        if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)


def refuse_pickle(path: Path) -> None:
    """Refuse a pickle or ``torch.save`` file: loading one can run arbitrary code."""
    if not path.is_file():
        return
    with open(path, "rb") as f:
        head = f.read(9)
    # safetensors: an 8-byte header length, then the JSON header's "{".
    looks_safetensors = len(head) == 9 and head[8:9] == b"{"
    if not looks_safetensors and head.startswith(_PICKLE_MAGIC):
        raise MiniGPTError(
            f"{path} is a pickle/torch.save file, which can run code when loaded; minigpt only "
            "loads safetensors + JSON checkpoints (write them with `minigpt train`)"
        )


def _newest_good(run_dir: Path, skip: Path | None = None) -> Checkpoint | None:
    for candidate in reversed(checkpoint_dirs(run_dir)):
        if candidate == skip:
            continue
        try:
            return Checkpoint(candidate)
        except MiniGPTError:
            continue
    return None


def find_checkpoint(path: str | Path, best: bool = False) -> Checkpoint:
    """A checkpoint folder, or the newest good checkpoint of a run folder (``best``: the one
    with the lowest val loss). Corrupted checkpoints are reported, naming the one used."""
    path = Path(path)
    if not path.exists():
        raise MiniGPTError(f"{path} does not exist; pass a run folder or a checkpoint folder")
    if path.is_file():
        refuse_pickle(path)
        raise MiniGPTError(f"{path} is a file; pass a run folder or a checkpoint folder")
    if (path / STATE_FILE).is_file() or _NAME.match(path.name):
        try:
            return Checkpoint(path)
        except MiniGPTError as e:
            good = _newest_good(path.parent.parent, skip=path)
            hint = f"; the newest good checkpoint is {good.path}" if good else ""
            raise MiniGPTError(f"{e}{hint}") from None
    candidates = checkpoint_dirs(path)
    if not candidates:
        raise MiniGPTError(f"{path} holds no checkpoints; train first with `minigpt train`")
    if best:
        chosen = best_checkpoint_dir(path)
        if chosen is not None:
            return find_checkpoint(chosen)
    errors = []
    for candidate in reversed(candidates):
        try:
            ckpt = Checkpoint(candidate)
        except MiniGPTError as e:
            errors.append(str(e))
            continue
        for error in errors:
            print(f"warning: {error}", file=sys.stderr)
        if errors:
            print(
                f"warning: skipped {len(errors)} bad checkpoint(s); using the newest good "
                f"one, {ckpt.path}",
                file=sys.stderr,
            )
        return ckpt
    raise MiniGPTError(
        f"every checkpoint in {path} is corrupted (newest: {errors[0]}); start over with --force"
    )
