"""A sweep's results: the table (printed, Markdown, CSV), the best config and a plot.

Written into the sweep folder after every trial (tables) and at the end (everything):

- ``results.md`` / ``results.csv``: one row per finished trial, best first: complete trials by
  val loss, then pruned ones by the val loss they had reached, then failed ones with the reason;
- ``best.toml``: the best trial's config, ready for ``minigpt train --config best.toml``;
- ``val_loss.png``: val loss against each swept parameter (complete and pruned trials), when
  matplotlib is installed (the ``plot`` extra); without it the report says the plot was skipped.
"""

from __future__ import annotations

import copy
import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optuna.trial import FrozenTrial, TrialState

from minigpt.config import apply_overrides, save_config
from minigpt.extras import available, missing

if TYPE_CHECKING:
    import optuna

    from minigpt.sweep.spec import Sweep

STATUS = {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned", TrialState.FAIL: "failed"}
METRICS = ("eff_batch", "val_loss", "ppl", "bpb", "iters", "seconds", "status", "note")


@dataclass
class TrialRow:
    """One finished trial, as the table shows it."""

    trial: int
    params: dict[str, Any]
    eff_batch: int | None
    val_loss: float | None
    ppl: float | None
    bpb: float | None
    iters: int | None
    seconds: float | None
    status: str
    note: str

    @classmethod
    def from_trial(cls, t: FrozenTrial) -> TrialRow:
        a = t.user_attrs
        note = a.get("reason") or ""
        if t.state == TrialState.FAIL and not note:
            note = "interrupted"
        if note == "interrupted":
            note = "interrupted; not counted, a resumed study runs another trial"
        return cls(
            trial=t.number,
            params=dict(t.params or t.system_attrs.get("fixed_params", {})),
            eff_batch=a.get("eff_batch"),
            val_loss=a.get("val_loss"),
            ppl=a.get("ppl"),
            bpb=a.get("bpb"),
            iters=a.get("iters"),
            seconds=a.get("seconds"),
            status=STATUS[t.state],
            note=note,
        )

    def sort_key(self) -> tuple[int, float, int]:
        rank = {"complete": 0, "pruned": 1, "failed": 2}[self.status]
        loss = self.val_loss if self.val_loss is not None and rank < 2 else math.inf
        return rank, loss, self.trial


@dataclass
class SweepReport:
    """The rows (best first) and the files written."""

    rows: list[TrialRow]
    param_names: list[str]
    files: dict[str, Path] = field(default_factory=dict)
    markdown: str = ""
    notes: list[str] = field(default_factory=list)  # e.g. what was skipped, and why

    @property
    def best(self) -> TrialRow | None:
        return self.rows[0] if self.rows and self.rows[0].status == "complete" else None

    def where(self) -> str:
        lines = [f"{name}: {path}" for name, path in self.files.items()]
        if self.best is not None and "best" in self.files:
            lines.append(f"train the best config: minigpt train --config {self.files['best']}")
        return "\n".join(lines + self.notes)


def collect_rows(study: optuna.Study) -> list[TrialRow]:
    finished = study.get_trials(deepcopy=False, states=tuple(STATUS))
    return sorted((TrialRow.from_trial(t) for t in finished), key=TrialRow.sort_key)


def write_report(study: optuna.Study, sweep: Sweep, tables_only: bool = False) -> SweepReport:
    """Write the tables (and unless ``tables_only``, best.toml and the plot) into the sweep."""
    out = sweep.out_dir
    report = SweepReport(collect_rows(study), list(sweep.space.params))
    report.markdown = markdown_table(report)
    _write(out / "results.md", f"# Sweep '{study.study_name}'\n\n{report.markdown}\n")
    _write(out / "results.csv", csv_table(report))
    report.files = {"table": out / "results.md", "csv": out / "results.csv"}
    if tables_only:
        return report
    if report.best is not None:
        write_best_config(report.best, sweep, out / "best.toml", study.study_name)
        report.files["best"] = out / "best.toml"
    if any(r.val_loss is not None for r in report.rows):
        if available("matplotlib"):
            plot_val_loss(report, sweep, out / "val_loss.png")
            report.files["plot"] = out / "val_loss.png"
        else:
            report.notes.append(missing("matplotlib", "plot"))
    return report


def _write(path: Path, text: str) -> None:
    """Write through a temporary name, so a reader never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, float):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
        return f"{value:.{digits - 1}e}"
    return f"{value:.{digits}g}"


def _time(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return f"{seconds:.1f} s" if seconds < 120 else f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def markdown_table(report: SweepReport) -> str:
    header = ["trial", *report.param_names, "eff. batch", "val loss", "PPL", "bpb"]
    header += ["iters", "time", "status", "note"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in report.rows:
        cells = [str(r.trial), *(_fmt(r.params.get(p)) for p in report.param_names)]
        loss = f"{r.val_loss:.4f}" if r.val_loss is not None else ""
        cells += [_fmt(r.eff_batch), loss, _fmt(r.ppl), _fmt(r.bpb), _fmt(r.iters)]
        cells += [_time(r.seconds), r.status, r.note.replace("|", "/")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def csv_table(report: SweepReport) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["trial", *report.param_names, *METRICS])
    for r in report.rows:
        values = [getattr(r, m) for m in METRICS]
        writer.writerow([r.trial, *(r.params.get(p) for p in report.param_names), *values])
    return buffer.getvalue()


def write_best_config(best: TrialRow, sweep: Sweep, path: Path, study_name: str) -> None:
    """The base config with the best trial's values: ``minigpt train --config`` reads it."""
    config = copy.deepcopy(sweep.base)
    apply_overrides(config, best.params, f"trial {best.trial}")
    config.train.out_dir = f"runs/{study_name}-best"
    save_config(config, path)
    values = ", ".join(f"{k} = {_fmt(v)}" for k, v in best.params.items())
    header = (
        f"# Best trial of sweep '{study_name}': trial {best.trial}, val loss {best.val_loss:.4f} "
        f"(PPL {_fmt(best.ppl)}, bpb {_fmt(best.bpb)}) after {best.iters} iterations.\n"
        f"# Swept values: {values}.\n"
        f"# The trial ran for {sweep.budget}; max_iters here is the base config's.\n"
    )
    _write(path, header + path.read_text(encoding="utf-8"))


def plot_val_loss(report: SweepReport, sweep: Sweep, path: Path) -> None:
    """One panel per swept parameter: val loss of complete (dots) and pruned (crosses) trials."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = report.param_names
    cols = min(3, len(names))
    rows = math.ceil(len(names) / cols)
    fig = Figure(figsize=(4.2 * cols, 3.4 * rows), layout="constrained")
    FigureCanvasAgg(fig)
    shown = [r for r in report.rows if r.val_loss is not None and r.status != "failed"]
    for i, name in enumerate(names):
        ax = fig.add_subplot(rows, cols, i + 1)
        param = sweep.space.params[name]
        labels = [str(c) for c in param.choices] if param.kind == "choice" else []
        for status, marker in (("complete", "o"), ("pruned", "x")):
            pts = [r for r in shown if r.status == status and name in r.params]
            if not pts:
                continue
            xs = [labels.index(str(r.params[name])) if labels else r.params[name] for r in pts]
            ax.scatter(xs, [r.val_loss for r in pts], marker=marker, label=status)
        if report.best is not None and name in report.best.params:
            x = report.best.params[name]
            ax.scatter(
                [labels.index(str(x)) if labels else x],
                [report.best.val_loss],
                marker="*",
                s=160,
                color="red",
                label="best",
            )
        if labels:
            ax.set_xticks(range(len(labels)), labels)
        if param.log:
            ax.set_xscale("log")
        ax.set_xlabel(name)
        ax.set_ylabel("val loss")
        ax.grid(alpha=0.3)
    fig.axes[0].legend(fontsize="small")
    fig.suptitle(f"val loss after {sweep.budget} per trial")
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=100)
    tmp.replace(path)
