"""``minigpt sweep``: hyperparameter search over real training runs, with Optuna.

Each trial samples a point of the search space (``sweep_space.py``), applies it to the base
config, and trains it with ``minigpt.training.trainer`` for the budget (iterations or minutes) in its own
run folder ``OUT/trial-NNNN``. The objective is the trial's best val loss; perplexity and bits
per byte are reported beside it. After each evaluation the trial reports its val loss to
Optuna through the Trainer's ``callbacks`` hook, and the pruner may stop it there.

The study lives in a database (SQLite at ``OUT/study.db`` by default; any SQLAlchemy URL such
as ``postgresql://`` lets several machines share one). Running the same command again resumes
it: finished trials are kept, interrupted ones are not counted, and only the missing trials
run. Failed trials (invalid combination, NaN, out of memory) are recorded with their reason and
the study goes on. Results are written by ``sweep_report.py``.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import gc
import math
import os
import socket
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.trial import TrialState

from minigpt.config import PRESETS, RunConfig, apply_overrides, load_config, validate
from minigpt.data.dataset import Dataset
from minigpt.data.meta import SplitInfo
from minigpt.errors import MiniGPTError
from minigpt.evaluation.evaluate import bits_per_byte, perplexity
from minigpt.sweep.report import SweepReport, write_report
from minigpt.sweep.space import PRUNERS, SAMPLERS, SearchSpace, load_space
from minigpt.sweep.spec import Budget, Sweep, parse_budget
from minigpt.training.callbacks import RunView
from minigpt.training.trainer import train

STUDY_FILE = "study.db"
INTERRUPTED = "interrupted"
# Fields that may differ between machines working on one study.


class TrialFailed(Exception):
    """Raised inside a trial to mark it failed; its reason is the trial's ``reason`` attr."""


def resolve_base(base: str, overrides: dict[str, Any] | None = None) -> RunConfig:
    """``base`` names a preset or a TOML config file; ``overrides`` go on top."""
    if base in PRESETS:
        return load_config(preset=base, overrides=overrides)
    if Path(base).is_file() or base.endswith(".toml"):
        return load_config(config_file=base, overrides=overrides)
    return load_config(preset=base, overrides=overrides)  # unknown preset: its error lists them


def _objective(sweep: Sweep, progress: Callable[[str], None]) -> Callable[[Any], float]:
    def objective(trial: optuna.Trial) -> float:
        trial.set_user_attr("worker", {"host": socket.gethostname(), "pid": os.getpid()})
        params = sweep.space.suggest(trial)
        shown = " ".join(f"{k}={_show(v)}" for k, v in params.items())
        progress(f"trial {trial.number}: {shown}")
        try:
            config = sweep.trial_config(params, trial.number)
            split = _val_split(config.train.data)
        except MiniGPTError as e:
            _fail(trial, f"invalid: {e}")
        trial.set_user_attr("eff_batch", config.train.batch_size * config.train.grad_accum)
        return _train_trial(trial, config, split)

    return objective


@functools.lru_cache(maxsize=8)
def _val_split(data: str) -> SplitInfo | None:
    """The val split's token and byte counts (for bits per byte)."""
    return Dataset(data).meta.splits.get("val")


class _TrialReport:
    """The trainer callback of one trial: each evaluation goes to Optuna, whose pruner may
    stop the trial there; when the run ends, the trainer's resolved config is kept (its
    ``--batch-size auto`` settled), since the trainer leaves the trial's config as it was."""

    def __init__(self, trial: optuna.Trial, config: RunConfig) -> None:
        self.trial, self.config = trial, config
        self.best, self.iter = math.inf, 0

    def __call__(self, trainer: RunView, evaluation: dict[str, Any]) -> None:
        val, step = float(evaluation["val"]), int(evaluation["iter"])
        self.best, self.iter = min(self.best, val), step
        self.trial.report(val, step)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at iteration {step} (val loss {val:.4f})")

    def close(self, trainer: RunView) -> None:
        self.config = trainer.config


def _train_trial(trial: optuna.Trial, config: RunConfig, split: SplitInfo | None) -> float:
    """Train one trial, reporting each evaluation to Optuna; returns the best val loss."""
    run_dir = Path(config.train.out_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    seen = _TrialReport(trial, config)
    start = time.time()

    def record() -> None:
        trial.set_user_attr(
            "eff_batch", seen.config.train.batch_size * seen.config.train.grad_accum
        )
        best = seen.best if math.isfinite(seen.best) else None
        trial.set_user_attr("val_loss", best)
        trial.set_user_attr("iters", seen.iter)
        trial.set_user_attr("seconds", round(time.time() - start, 2))
        if best is not None:
            trial.set_user_attr("ppl", perplexity(best))
            if split is not None:
                trial.set_user_attr("bpb", bits_per_byte(best, split.tokens, split.bytes))

    with open(run_dir / "train.log", "a", encoding="utf-8") as log:
        try:
            with contextlib.redirect_stdout(log):
                result = train(config, callbacks=[seen])
        except optuna.TrialPruned:
            record()
            raise
        except KeyboardInterrupt:
            record()
            trial.set_user_attr("reason", INTERRUPTED)
            raise
        except Exception as e:  # OOM, NaN (MiniGPTError) or anything else: the study goes on
            record()
            traceback.print_exc(file=log)
            _release_memory()
            _fail(trial, _failure_reason(e))
    seen.best, seen.iter = result.best_val_loss, result.iterations
    record()
    return result.best_val_loss


def _fail(trial: optuna.Trial, reason: str) -> None:
    trial.set_user_attr("reason", reason)
    raise TrialFailed(reason)


def _failure_reason(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    if isinstance(e, torch.cuda.OutOfMemoryError) or "out of memory" in text.lower():
        return f"out of memory: {text}"
    if isinstance(e, MiniGPTError):
        return text
    return f"{type(e).__name__}: {text}"


def _release_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _show(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


# -- the study -------------------------------------------------------------------------------


def make_sampler(name: str, seed: int, trials: int) -> optuna.samplers.BaseSampler:
    """Grid trials are all enqueued up front, so grid only needs a sampler that never runs."""
    if name in ("grid", "random"):
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(2, min(10, trials // 3)))
    raise MiniGPTError(f"unknown sampler '{name}'; choose from {', '.join(SAMPLERS)}")


def make_pruner(name: str, budget: Budget) -> optuna.pruners.BasePruner:
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner()
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(max_resource=budget.iters or "auto")
    if name == "none":
        return optuna.pruners.NopPruner()
    raise MiniGPTError(f"unknown pruner '{name}'; choose from {', '.join(PRUNERS)}")


def open_study(storage: str, name: str) -> optuna.Study:
    """Create or load the study; one-line errors for bad URLs and missing drivers."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        try:
            rdb = optuna.storages.RDBStorage(storage, heartbeat_interval=30, grace_period=120)
            return optuna.create_study(
                storage=rdb, study_name=name, direction="minimize", load_if_exists=True
            )
        except ModuleNotFoundError as e:
            raise MiniGPTError(
                f"the database driver for {storage.split(':')[0]} is not installed ({e}); "
                "e.g. pip install psycopg2-binary for postgresql://"
            ) from None
        except Exception as e:  # sqlalchemy raises many kinds; all mean "cannot open it"
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise MiniGPTError(f"cannot open the study database {storage}: {first}") from None


def counted(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Finished trials that count towards --trials (interrupted ones are run again)."""
    out = []
    for t in study.get_trials(deepcopy=False):
        failed_for_real = t.state == TrialState.FAIL and t.user_attrs.get("reason") not in (
            None,
            INTERRUPTED,
        )
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED) or failed_for_real:
            out.append(t)
    return out


def _enqueue_missing(study: optuna.Study, points: list[dict[str, Any]]) -> int:
    """Queue the grid points no trial has taken yet; returns how many wait to run."""
    taken = []
    done = {t.number for t in counted(study)}
    for t in study.get_trials(deepcopy=False):
        if t.number in done or t.state in (TrialState.WAITING, TrialState.RUNNING):
            taken.append(t.params or t.system_attrs.get("fixed_params", {}))
    for point in points:
        if point not in taken:
            study.enqueue_trial(point)
            taken.append(point)
    return len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))


def _fail_dead_trials(study: optuna.Study) -> int:
    """Mark failed the running trials of processes on this machine that no longer exist.

    A sweep killed hard (kill -9, a crash, a reboot) leaves its trial "running" in the database;
    without this it would only be failed when its heartbeat goes stale. Trials of other machines
    are left to the heartbeat.
    """
    host, dead = socket.gethostname(), 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = t.user_attrs.get("worker") or {}
        if worker.get("host") == host and not _alive(int(worker.get("pid", 0))):
            study._storage.set_trial_user_attr(t._trial_id, "reason", INTERRUPTED)
            study.tell(t.number, state=TrialState.FAIL)
            dead += 1
    return dead


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _check_resume(study: optuna.Study, sweep: Sweep, storage: str) -> None:
    settings = sweep.settings()
    stored = study.user_attrs.get("minigpt")
    if stored is None:
        clash = sorted(sweep.out_dir.glob("trial-*"))
        if clash and not study.trials:
            raise MiniGPTError(
                f"{sweep.out_dir} already holds trial folders ({clash[0].name}, ...) but "
                f"{storage} has no study '{study.study_name}'; choose another --out"
            )
        study.set_user_attr("minigpt", settings)
        return
    changed = [k for k in settings if stored.get(k) != settings[k]]
    if changed:
        raise MiniGPTError(
            f"study '{study.study_name}' in {storage} was run with a different "
            f"{' and '.join(changed)}; resume it with the same --space/--base/--budget, "
            "or start a new one with another --out or --study-name"
        )


def run_sweep(
    space: str | Path | SearchSpace,
    base: RunConfig,
    *,
    budget: str | int | Budget,
    trials: int | None = None,
    sampler: str = "tpe",
    pruner: str = "median",
    out_dir: str | Path = "sweeps/default",
    storage: str | None = None,
    study_name: str | None = None,
    seed: int = 0,
    overrides: dict[str, Any] | None = None,
    quiet: bool = False,
) -> SweepReport:
    """Run (or resume) a study until it holds ``trials`` finished trials; write the report.

    Each trial's config is ``base`` < the space's ``[fixed]`` < ``overrides`` (the command
    line's config flags) < the trial's values < the budget.
    """
    space = space if isinstance(space, SearchSpace) else load_space(space)
    budget = budget if isinstance(budget, Budget) else parse_budget(budget)
    if sampler not in SAMPLERS:
        raise MiniGPTError(f"unknown sampler '{sampler}'; choose from {', '.join(SAMPLERS)}")
    if trials is not None and trials <= 0:
        raise MiniGPTError(f"--trials must be positive, got {trials}")
    base = copy.deepcopy(base)
    apply_overrides(base, space.fixed, f"[fixed] of {space.source}")
    apply_overrides(base, overrides or {}, "the command line")
    validate(base)
    if not base.train.data:
        raise MiniGPTError("no dataset given; pass --data DATASET_FOLDER (from `minigpt prepare`)")
    Dataset(base.train.data)  # fail now, not in every trial
    out = Path(out_dir)
    sweep = Sweep(space=space, base=base, budget=budget, out_dir=out)
    points = space.grid() if sampler == "grid" else []
    target = min(trials or len(points), len(points)) if points else (trials or 20)
    say = (lambda _: None) if quiet else (lambda m: print(m, flush=True))
    _warn_if_pruning_is_idle(base, budget, pruner)

    out.mkdir(parents=True, exist_ok=True)
    storage = storage or f"sqlite:///{(out / STUDY_FILE).resolve()}"
    name = study_name or out.resolve().name
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # we print our own line per trial
    study = open_study(storage, name)
    try:
        _check_resume(study, sweep, storage)
        if _fail_dead_trials(study):
            say("trials left running by a killed sweep are marked interrupted (not counted)")
        study.sampler = make_sampler(sampler, seed + len(study.trials), target)
        study.pruner = make_pruner(pruner, budget)
        done = len(counted(study))
        if done:
            say(f"resuming study '{name}': {done} of {target} trials already finished")
        say(f"sweep '{name}': {target} trials of {budget}, sampler {sampler}, pruner {pruner}")
        objective = _objective(sweep, say)
        while len(counted(study)) < target:
            if points and _enqueue_missing(study, points) == 0:
                say("the rest of the grid is running elsewhere (another process or machine)")
                break
            study.optimize(
                objective,
                n_trials=1,
                catch=(TrialFailed,),
                callbacks=[lambda _, finished: say(_summary(finished))],
            )
            write_report(study, sweep, tables_only=True)
    except KeyboardInterrupt:
        say(f"interrupted: {len(counted(study))} trials finished; run the same command to resume")
        write_report(study, sweep)
        raise
    finally:
        optuna.logging.set_verbosity(verbosity)
    report = write_report(study, sweep)
    say(report.markdown)
    say(report.where())
    return report


def _summary(trial: optuna.trial.FrozenTrial) -> str:
    attrs = trial.user_attrs
    status = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed"}.get(
        trial.state.name, trial.state.name.lower()
    )
    parts = [f"  -> {status}"]
    if attrs.get("val_loss") is not None:
        parts.append(
            f"val loss {attrs['val_loss']:.4f} (ppl {attrs.get('ppl', math.nan):.2f}, "
            f"bpb {attrs.get('bpb', math.nan):.3f}) after {attrs.get('iters', 0)} iters, "
            f"{attrs.get('seconds', 0):.1f} s"
        )
    if attrs.get("reason"):
        parts.append(attrs["reason"])
    return ": ".join(parts[:2]) + ("; " + parts[2] if len(parts) > 2 else "")


def _warn_if_pruning_is_idle(base: RunConfig, budget: Budget, pruner: str) -> None:
    if pruner != "none" and budget.iters and base.train.eval_interval >= budget.iters:
        print(
            f"warning: eval_interval ({base.train.eval_interval}) >= the budget "
            f"({budget.iters} iterations), so trials report once and cannot be pruned early; "
            f"pass e.g. --eval-interval {max(1, budget.iters // 5)}",
            file=sys.stderr,
        )
