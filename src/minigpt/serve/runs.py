"""The runs dashboard's data: every run under the runs folder, read-only.

A run is a folder (at most three levels below ``--runs``) holding ``metrics.jsonl``,
``config.toml`` or ``checkpoints/``. Runs are found by walking the folder, and a request
names one by its id in that list: a path a client makes up is never opened, so ``..`` or an
absolute path cannot reach outside, and symbolic links that point outside are skipped.
Nothing here writes.
"""

from __future__ import annotations

import json
from pathlib import Path

from fastapi import APIRouter
from starlette.requests import Request as HTTPRequest

from minigpt.serve.errors import APIError

router = APIRouter()
MARKERS = ("metrics.jsonl", "config.toml", "checkpoints")
MAX_DEPTH = 3
MAX_POINTS = 2000  # train points sent per run; longer runs are thinned evenly
MAX_TEXT = 64 * 1024  # bytes of samples.txt and config.toml sent (the end of samples)


def _inside(path: Path, root: Path) -> bool:
    try:
        return path.resolve().is_relative_to(root)
    except OSError:
        return False


def discover(root: Path) -> dict[str, Path]:
    """Run id (path relative to ``root``, with ``/``) -> folder, for every run under ``root``."""
    root = root.resolve()
    found: dict[str, Path] = {}
    if not root.is_dir():
        return found

    def walk(folder: Path, depth: int) -> None:
        try:
            children = sorted(p for p in folder.iterdir() if p.is_dir() and _inside(p, root))
        except OSError:
            return
        for child in children:
            if any((child / m).exists() for m in MARKERS):
                found[child.relative_to(root).as_posix()] = child
            elif depth < MAX_DEPTH and not child.name.startswith("."):
                walk(child, depth + 1)

    walk(root, 1)
    return found


def read_metrics(path: Path, max_points: int = MAX_POINTS) -> tuple[list[dict], list[dict]]:
    """(train records thinned to ``max_points``, every eval record); bad lines are skipped."""
    train, evals = [], []
    if not path.is_file():
        return train, evals
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line being written right now, or damage: skip it
            if isinstance(record, dict):
                (evals if record.get("kind") == "eval" else train).append(record)
    if len(train) > max_points:
        stride = -(-len(train) // max_points)
        train = train[::stride] + ([train[-1]] if (len(train) - 1) % stride else [])
    return train, evals


def _text(path: Path, tail: bool = False) -> str | None:
    if not path.is_file():
        return None
    with open(path, "rb") as f:
        size = f.seek(0, 2)
        f.seek(max(0, size - MAX_TEXT) if tail else 0)
        return f.read(MAX_TEXT).decode("utf-8", errors="replace")


def checkpoints(run: Path) -> list[dict]:
    out = []
    for folder in sorted((run / "checkpoints").glob("*/")):
        state = folder / "state.json"
        if not state.is_file():
            continue
        try:
            meta = json.loads(state.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            meta = {}
        size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
        out.append(
            {
                "name": folder.name,
                "iteration": meta.get("iteration"),
                "val_loss": meta.get("val_loss"),
                "tokens_seen": meta.get("tokens_seen"),
                "bytes": size,
            }
        )
    return out


def summary(run_id: str, run: Path) -> dict:
    metrics = run / "metrics.jsonl"
    train, evals = read_metrics(metrics, max_points=1)
    return {
        "id": run_id,
        "modified": metrics.stat().st_mtime if metrics.is_file() else run.stat().st_mtime,
        "last_train": train[-1] if train else None,
        "last_eval": evals[-1] if evals else None,
    }


def _runs(http: HTTPRequest) -> dict[str, Path]:
    root = http.app.state.minigpt.config.runs
    if root is None:
        raise APIError(404, "this server shows no runs (start it with --runs DIR)")
    return discover(Path(root))


@router.get("/api/runs")
async def list_runs(http: HTTPRequest) -> dict:
    runs = _runs(http)
    return {"runs": [summary(run_id, path) for run_id, path in runs.items()]}


@router.get("/api/runs/{run_id:path}")
async def get_run(run_id: str, http: HTTPRequest) -> dict:
    runs = _runs(http)
    if run_id not in runs:
        raise APIError(404, f"no run {run_id!r} under the runs folder", "run")
    run = runs[run_id]
    train, evals = read_metrics(run / "metrics.jsonl")
    return {
        **summary(run_id, run),
        "config": _text(run / "config.toml"),
        "train": train,
        "evals": evals,
        "samples": _text(run / "samples.txt", tail=True),
        "checkpoints": checkpoints(run),
    }
