import csv
import math
import socket
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import torch

import minigpt.sweep.runner as sweep_module
from minigpt.cli import main
from minigpt.config import load_config
from minigpt.errors import MiniGPTError
from minigpt.sweep.runner import STUDY_FILE, run_sweep
from minigpt.sweep.space import load_space
from minigpt.sweep.spec import Budget, Sweep, parse_budget
from minigpt.training.trainer import train as real_train

# One layer, 16 wide, 10 steps with an evaluation every 5: a trial takes about a second.
FAST = dict(n_layer=1, n_embd=16, n_head=2, max_iters=10, eval_interval=5, checkpoint_interval=10)


@pytest.fixture(autouse=True)
def one_thread():
    """Many tiny trials: one torch thread avoids thread hand-off costs on a busy small CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def base(tiny_config):
    return tiny_config(**FAST)


@pytest.fixture
def space_file(tmp_path):
    def make(text):
        path = tmp_path / "space.toml"
        path.write_text(text, encoding="utf-8")
        return path

    return make


def counting_train(monkeypatch, fail=None):
    """Replace the sweep's train with one that counts calls and may fail on demand."""
    calls = []

    def fake(config, **kwargs):
        calls.append(config)
        if fail is not None:
            fail(config, len(calls))
        return real_train(config, **kwargs)

    monkeypatch.setattr(sweep_module, "train", fake)
    return calls


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_two_by_two_grid_writes_the_table_best_config_and_plot(
    tmp_path, dataset, space_file, capsys
):
    space = space_file(
        "[fixed]\neval_interval = 50\n[params]\nlr = [1e-3, 1e-2]\nn_layer = [1, 2]\n"
    )
    out = tmp_path / "sweep"
    flags = ["--n-embd", "16", "--n-head", "2", "--eval-interval", "5", "--device", "cpu"]
    code = main(
        ["sweep", "--space", str(space), "--base", "cpu-demo", "--data", str(dataset)]
        + ["--budget", "10", "--sampler", "grid", "--out", str(out), "--block-size", "16"]
        + ["--batch-size", "4", "--eval-iters", "2", *flags]
    )
    printed = capsys.readouterr().out
    assert code == 0
    rows = read_csv(out / "results.csv")
    assert [r["status"] for r in rows] == ["complete"] * 4
    assert list(rows[0]) == ["trial", "lr", "n_layer", "eff_batch", "val_loss", "ppl", "bpb"] + [
        "iters",
        "seconds",
        "status",
        "note",
    ]
    losses = [float(r["val_loss"]) for r in rows]
    assert losses == sorted(losses)  # best first
    assert {(float(r["lr"]), int(r["n_layer"])) for r in rows} == {
        (1e-3, 1),
        (1e-3, 2),
        (1e-2, 1),
        (1e-2, 2),
    }
    for r in rows:
        assert math.isclose(float(r["ppl"]), math.exp(float(r["val_loss"])), rel_tol=1e-6)
        # char tokenizer on ASCII text: one token per byte, so bpb = loss / ln 2
        assert math.isclose(float(r["bpb"]), float(r["val_loss"]) / math.log(2), rel_tol=1e-6)
        assert r["eff_batch"] == "4" and r["iters"] == "10"
        trial = load_config(config_file=out / f"trial-{int(r['trial']):04d}" / "config.toml")
        assert trial.train.eval_interval == 5  # the --eval-interval flag wins over [fixed]
    markdown = (out / "results.md").read_text()
    assert (
        markdown.count("| complete |") == 4 and "| eff. batch | val loss | PPL | bpb |" in markdown
    )
    assert "| complete |" in printed and "minigpt train --config" in printed
    best = load_config(config_file=out / "best.toml")
    assert best.train.lr == float(rows[0]["lr"]) and best.model.n_layer == int(rows[0]["n_layer"])
    assert best.train.max_iters == 1800  # the base's length, ready for a full run
    assert (out / "val_loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_invalid_combinations_are_skipped_with_a_reason(base, space_file, tmp_path, monkeypatch):
    calls = counting_train(monkeypatch)
    space = space_file(
        'constraints = ["n_layer * n_embd <= 16"]\n[params]\nn_head = [2, 3]\nn_layer = [1, 2]\n'
    )
    report = run_sweep(space, base, budget=10, sampler="grid", out_dir=tmp_path / "s", quiet=True)
    by_point = {(r.params["n_head"], r.params["n_layer"]): r for r in report.rows}
    assert by_point[(2, 1)].status == "complete"
    assert len(calls) == 1  # invalid trials cost no training
    for point in [(3, 1), (3, 2), (2, 2)]:
        assert by_point[point].status == "failed"
        assert by_point[point].note.startswith("invalid: ")
    assert "constraint 'n_layer * n_embd <= 16' does not hold (n_embd=16, n_layer=2)" in (
        by_point[(2, 2)].note
    )
    assert "n_embd (16) must be divisible by n_head (3)" in by_point[(3, 1)].note
    assert report.rows[0].status == "complete"  # best first, failures last


def test_failed_trials_record_the_reason_and_the_study_goes_on(
    base, space_file, tmp_path, monkeypatch
):
    def fail(config, n):
        if n == 1:
            raise MiniGPTError("loss became nan at iteration 3; lower --lr (now 0.5)")
        if n == 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    calls = counting_train(monkeypatch, fail)
    space = space_file("[params]\nlr = [0.5, 0.2, 1e-3]\n")
    report = run_sweep(space, base, budget=10, sampler="grid", out_dir=tmp_path / "s", quiet=True)
    assert len(calls) == 3
    notes = {r.params["lr"]: (r.status, r.note) for r in report.rows}
    assert notes[1e-3] == ("complete", "")
    assert notes[0.5] == ("failed", "loss became nan at iteration 3; lower --lr (now 0.5)")
    assert notes[0.2][0] == "failed" and notes[0.2][1].startswith("out of memory: CUDA out of")
    log = (tmp_path / "s" / "trial-0001" / "train.log").read_text()
    assert "OutOfMemoryError" in log  # the details stay in the trial's log


def test_interrupted_study_resumes_without_redoing_finished_trials(
    base, space_file, tmp_path, monkeypatch
):
    def interrupt(config, n):
        if n == 3:
            raise KeyboardInterrupt

    calls = counting_train(monkeypatch, interrupt)
    space = space_file("[params]\nlr = { low = 1e-4, high = 1e-2, log = true }\n")
    out = tmp_path / "s"
    args = dict(budget=10, sampler="random", pruner="none", trials=4, out_dir=out, quiet=True)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(space, base, **args)
    assert len(calls) == 3
    rows = {r.trial: r for r in sweep_module.write_report(*_study(out, space, base)).rows}
    assert [rows[n].status for n in range(3)] == ["complete", "complete", "failed"]
    assert rows[2].note.startswith("interrupted")
    finished = {n: (out / f"trial-{n:04d}" / "config.toml").stat().st_mtime_ns for n in (0, 1)}

    calls = counting_train(monkeypatch)
    report = run_sweep(space, base, **args)
    assert len(calls) == 2  # trials 0 and 1 are kept; the interrupted one does not count
    assert {r.trial for r in report.rows if r.status == "complete"} == {0, 1, 3, 4}
    assert {Path(c.train.out_dir).name for c in calls} == {"trial-0003", "trial-0004"}
    for n, mtime in finished.items():
        assert (out / f"trial-{n:04d}" / "config.toml").stat().st_mtime_ns == mtime
    # a resumed random study does not replay the first run's points
    lrs = [r.params["lr"] for r in report.rows if r.status == "complete"]
    assert len(set(lrs)) == 4 and all(1e-4 <= lr <= 1e-2 for lr in lrs)

    calls = counting_train(monkeypatch)
    run_sweep(space, base, **args)
    assert calls == []  # nothing left to do

    other = space_file("[params]\nlr = [1e-3, 2e-3]\n")
    with pytest.raises(MiniGPTError, match="different space.*same --space"):
        run_sweep(other, base, **args)


def test_interrupted_grid_point_is_run_again(base, space_file, tmp_path, monkeypatch):
    def interrupt(config, n):
        if n == 2:
            raise KeyboardInterrupt

    counting_train(monkeypatch, interrupt)
    space = space_file("[params]\nlr = [1e-3, 2e-3, 3e-3]\n")
    args = dict(budget=5, sampler="grid", pruner="none", out_dir=tmp_path / "s", quiet=True)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(space, base, **args)
    calls = counting_train(monkeypatch)
    report = run_sweep(space, base, **args)
    assert sorted(c.train.lr for c in calls) == [2e-3, 3e-3]  # not 1e-3 again
    complete = {r.params["lr"] for r in report.rows if r.status == "complete"}
    assert complete == {1e-3, 2e-3, 3e-3}
    assert [r.trial for r in report.rows if r.status == "failed"] == [1]  # the interrupted one


def test_trial_of_a_killed_sweep_is_not_left_running(base, space_file, tmp_path, monkeypatch):
    space = space_file("[params]\nlr = [1e-3, 2e-3]\n")
    args = dict(budget=5, sampler="grid", pruner="none", out_dir=tmp_path / "s", quiet=True)
    run_sweep(space, base, trials=1, **args)
    study, _ = _study(tmp_path / "s", space, base)
    killed = subprocess.Popen([sys.executable, "-c", "pass"])
    killed.wait()
    trial = study.ask({"lr": optuna.distributions.CategoricalDistribution([1e-3, 2e-3])})
    trial.set_user_attr("worker", {"host": socket.gethostname(), "pid": killed.pid})
    calls = counting_train(monkeypatch)
    report = run_sweep(space, base, **args)
    assert len(calls) == 1
    rows = {r.trial: r for r in report.rows}
    assert rows[1].status == "failed" and rows[1].note.startswith("interrupted")
    assert [rows[n].status for n in (0, 2)] == ["complete", "complete"]


def _study(out, space, base):
    study = optuna.load_study(study_name=out.name, storage=f"sqlite:///{out / STUDY_FILE}")
    return study, Sweep(load_space(space), base, Budget(iters=10), out)


def test_pruner_stops_a_trial_with_an_absurd_learning_rate(base, space_file, tmp_path):
    # Grid order is file order: two sane trials complete, then the median pruner compares the
    # third (a learning rate so small that nothing is learnt) at its first evaluation.
    space = space_file("[params]\nlr = [1e-2, 5e-3, 1e-7]\n")
    report = run_sweep(
        space, base, budget=20, sampler="grid", pruner="median", out_dir=tmp_path / "s", quiet=True
    )
    rows = {r.params["lr"]: r for r in report.rows}
    assert rows[1e-2].status == rows[5e-3].status == "complete"
    assert rows[1e-2].iters == rows[5e-3].iters == 20
    assert rows[1e-7].status == "pruned"
    assert rows[1e-7].iters == 5  # stopped at its first evaluation, not after 20 steps
    assert rows[1e-7].val_loss > max(rows[1e-2].val_loss, rows[5e-3].val_loss)
    assert [r.status for r in report.rows] == ["complete", "complete", "pruned"]


def test_time_budget_stops_each_trial_on_the_clock(base, space_file, tmp_path):
    space = space_file("[params]\nlr = [1e-3]\n")
    base.train.max_iters = 100_000
    report = run_sweep(
        space, base, budget="0.001s", sampler="grid", out_dir=tmp_path / "s", quiet=True
    )
    (row,) = report.rows
    assert row.status == "complete" and row.iters == 1  # one step, then eval and stop
    assert row.val_loss is not None and math.isfinite(row.val_loss)


def test_parse_budget():
    assert parse_budget("300") == Budget(iters=300)
    assert parse_budget(300) == Budget(iters=300)
    assert parse_budget("5m") == Budget(minutes=5)
    assert parse_budget("90s") == Budget(minutes=1.5)
    assert parse_budget("1.5h") == Budget(minutes=90)
    for bad in ("0", "-5", "5x", "m", "1e3"):
        with pytest.raises(MiniGPTError, match="neither a number of iterations"):
            parse_budget(bad)


def test_cli_errors_are_one_line(tmp_path, dataset, space_file, capsys):
    space = space_file("[params]\nlr = { low = 1e-4, high = 1e-2 }\n")
    code = main(
        ["sweep", "--space", str(space), "--base", "cpu-demo", "--data", str(dataset)]
        + ["--budget", "10", "--sampler", "grid", "--out", str(tmp_path / "s")]
    )
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "continuous range" in err
    code = main(["sweep", "--space", str(space), "--budget", "10", "--out-dir", "x"])
    err = capsys.readouterr().err
    assert code == 2 and "--out-dir is set per trial; use --out" in err
    code = main(["sweep", "--space", str(space), "--base", "cpu-dem", "--budget", "10"])
    err = capsys.readouterr().err
    assert code == 2 and "did you mean 'cpu-demo'" in err
    code = main(
        ["sweep", "--space", str(space), "--base", "cpu-demo", "--data", str(dataset)]
        + ["--budget", "10", "--storage", "nosuchdb://x", "--out", str(tmp_path / "t")]
    )
    err = capsys.readouterr().err
    assert code == 2 and "cannot open the study database nosuchdb://x" in err


def test_auto_batch_size_is_recorded_as_resolved(tiny_config, space_file, tmp_path):
    base = tiny_config(**FAST, batch_size="auto", effective_batch=8)
    space = space_file("[params]\nlr = [1e-3]\n")
    report = run_sweep(space, base, budget=10, sampler="grid", out_dir=tmp_path / "s", quiet=True)
    (row,) = report.rows
    assert row.status == "complete"
    assert row.eff_batch == 8  # the planner's micro-batch x accumulation, not auto's 0


def test_without_matplotlib_the_plot_is_skipped_with_one_notice(
    base, space_file, tmp_path, monkeypatch
):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)  # import matplotlib... -> ImportError
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    space = space_file("[params]\nlr = [1e-3]\n")
    report = run_sweep(space, base, budget=5, sampler="grid", out_dir=tmp_path / "s", quiet=True)
    assert report.rows[0].status == "complete" and (tmp_path / "s" / "results.md").is_file()
    assert not (tmp_path / "s" / "val_loss.png").exists() and "plot" not in report.files
    assert report.where().count("matplotlib is not installed") == 1
