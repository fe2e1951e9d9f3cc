import subprocess
import sys

import pytest

from minigpt.cli import main

TINY_FLAGS = [
    "--n-layer",
    "1",
    "--n-head",
    "2",
    "--n-embd",
    "16",
    "--block-size",
    "16",
    "--batch-size",
    "4",
    "--max-iters",
    "10",
    "--eval-interval",
    "5",
    "--eval-iters",
    "2",
    "--log-interval",
    "5",
    "--checkpoint-interval",
    "5",
    "--device",
    "cpu",
]


def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_end_to_end(tmp_path, text_file, capsys):
    ds, run = tmp_path / "ds", tmp_path / "run"
    code, out, _ = run_cli(capsys, "prepare", text_file, "--out", ds)
    assert code == 0 and "char tokenizer" in out
    code, out, _ = run_cli(capsys, "train", "--data", ds, "--out-dir", run, *TINY_FLAGS)
    assert code == 0 and "done: 10 iterations" in out
    code, out, _ = run_cli(
        capsys, "train", "--data", ds, "--out-dir", run, "--resume", "--max-iters", "15"
    )
    assert code == 0 and "resumed from" in out and "done: 15 iterations" in out
    code, out, _ = run_cli(capsys, "sample", run, "--prompt", "To be", "-m", "12", "-n", "2")
    assert code == 0 and out.count("To be") == 2 and "--- sample 2 ---" in out


def assert_one_line_error(code, err, pattern):
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert pattern in lines[0], lines[0]


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (["prepare", "missing.txt", "--out", "ds"], "does not exist"),
        (["train", "--data", "nowhere"], "not a prepared dataset"),
        (["train", "--data", "x", "--n-embd", "10", "--n-head", "3"], "divisible by n_head"),
        (["train", "--data", "x", "--lr", "-1"], "lr must be a positive"),
        (["train", "--n-layr", "3"], "did you mean '--n-layer'"),
        (["train", "--maz-iters", "3"], "did you mean '--max-iters'?"),
        (["train", "--n-layer", "six"], "'n_layer' expects int"),
        (["sample", "nowhere"], "does not exist"),
        (["sample", "nowhere", "--top-p", "0"], "top_p must be in (0, 1]"),
        (["chat", "nowhere", "--temperature", "-1"], "temperature must be a finite number >= 0"),
        (["sample", "nowhere", "--temperature", "inf"], "temperature must be a finite number"),
        (["chat", "nowhere", "--temperature", "nan"], "temperature must be a finite number"),
        (["sample", "nowhere", "--repetition-penalty", "inf"], "a finite number > 0 (1: off)"),
        (["sample", "nowhere", "--top-p", "nan"], "top_p must be in (0, 1]"),
        (["chat", "nowhere", "--min-p", "inf"], "min_p must be in [0, 1]"),
    ],
)
def test_bad_input_is_one_line(tmp_path, monkeypatch, capsys, args, pattern):
    monkeypatch.chdir(tmp_path)
    try:
        code = main(args)
    except SystemExit as e:  # argparse errors exit directly
        code = e.code
    _, err = capsys.readouterr()
    assert_one_line_error(code, err, pattern)


@pytest.mark.parametrize("flag", ["--bogus", "--epochs", "--verbose", "--model"])
def test_unrelated_flag_gets_no_suggestion(tmp_path, monkeypatch, capsys, flag):
    # Every flag starts with '--', which alone once made '--bogus' look 67% like '--pos'.
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        main(["train", flag, "3"])
    _, err = capsys.readouterr()
    assert_one_line_error(e.value.code, err, f"unrecognized arguments: {flag} 3 (see")
    assert "did you mean" not in err


@pytest.mark.parametrize(
    ("args", "suggested"),
    [
        (["train", "--temprature", "1"], None),  # a sample flag, not one of train's
        (["sample", "run", "--temprature", "1"], "--temperature"),
        (["train", "--n-layr", "3"], "--n-layer"),
    ],
)
def test_suggestions_come_from_the_subcommands_own_flags(
    tmp_path, monkeypatch, capsys, args, suggested
):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit):
        main(args)
    _, err = capsys.readouterr()
    if suggested is None:
        assert "did you mean" not in err and "unrecognized arguments" in err
    else:
        assert f"did you mean '{suggested}'?" in err


def test_prompt_outside_vocabulary(tmp_path, text_file, capsys):
    ds, run = tmp_path / "ds", tmp_path / "run"
    run_cli(capsys, "prepare", text_file, "--out", ds)
    run_cli(capsys, "train", "--data", ds, "--out-dir", run, *TINY_FLAGS)
    code, _, err = run_cli(capsys, "sample", run, "--prompt", "Zürich")
    assert_one_line_error(code, err, "characters the char vocabulary lacks")


def test_sample_controls_and_cache_flag(trained_run, capsys):
    common = ["sample", trained_run, "--prompt", "To be", "-m", "40", "--temperature", "0"]
    _, cached, _ = run_cli(capsys, *common)
    _, uncached, _ = run_cli(capsys, *common, "--no-cache")
    assert cached == uncached and cached.startswith("To be") and len(cached) == 5 + 40 + 1
    flags = ["--top-p", "0.9", "--min-p", "0.05", "--repetition-penalty", "1.3", "--stop", "e"]
    code, out, _ = run_cli(capsys, "sample", trained_run, "--prompt", "To", "--random", *flags)
    assert code == 0 and out.startswith("To") and "e" not in out[2:]


def test_help_lists_every_field_with_its_default(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert "--n-layer" in out and "(default: 6)" in out and "--grad-accum" in out


def test_console_script_runs_as_module():
    result = subprocess.run(
        [sys.executable, "-m", "minigpt", "--version"], capture_output=True, text=True, check=True
    )
    assert result.stdout.startswith("minigpt ")


def test_tokenizer_commands(tmp_path, text_file, capsys):
    tok = tmp_path / "tok.json"
    code, out, _ = run_cli(
        capsys, "tokenizer", "train", text_file, "--out", tok, "--vocab-size", 300
    )
    assert code == 0 and "trained bpe tokenizer, vocab 300" in out and tok.is_file()
    code, out, _ = run_cli(capsys, "tokenizer", "encode", tok, "To be, or not")
    ids = out.split()
    code, out, _ = run_cli(capsys, "tokenizer", "decode", tok, *ids)
    assert out == "To be, or not\n"
    code, out, _ = run_cli(capsys, "tokenizer", "inspect", tok, "Azərbaycan dili")
    assert "bpe tokenizer, vocab 300" in out and "15 characters, 16 bytes" in out
    assert "|<0xC9>|<0x99>|" in out  # 'ə' was never seen: two byte tokens
    code, _, err = run_cli(capsys, "tokenizer", "decode", tok, "999")
    assert code == 2 and "outside the vocabulary" in err


def test_prepare_flags(tmp_path, text_file, capsys):
    import json

    text_file.write_text(text_file.read_text().replace("\n", "\n\n"))  # one line, one paragraph
    out = tmp_path / "ds"
    code, stdout, _ = run_cli(
        capsys, "prepare", text_file, "--out", out, "--tokenizer", "bpe", "--vocab-size", "300",
        "--paragraphs", "--split", "documents", "--min-chars", "5", "--no-dedupe",
        "--tokenizer-sample-bytes", "5KB", "--shard-tokens", "1k",
    )  # fmt: skip
    assert code == 0 and "split by documents" in stdout
    meta = json.loads((out / "meta.json").read_text())
    assert 3_000 < meta["report"]["tokenizer_sample_bytes"] < 5_100  # a random ~5 KB share
    assert meta["report"]["cleaning"]["steps"]["dedupe"] is False
    assert meta["report"]["documents"]["kept"] == 200  # 5 lines x 40, duplicates kept
    assert meta["splits"]["train"]["files"][:2] == ["train-00000.bin", "train-00001.bin"]


def test_prepare_bad_input_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "a"}\nnot json\n')
    code, _, err = run_cli(capsys, "prepare", bad, "--out", tmp_path / "ds")
    assert code == 2 and err.count("\n") == 1 and "bad.jsonl:2 is not valid JSON" in err


def test_params_command(capsys):
    code, out, _ = run_cli(capsys, "params", "--preset", "course-100m", "--course")
    assert code == 0
    assert "109,923,072" in out and "(matches)" in out
    assert "bias True -> False" in out and "134,553,600" in out


def test_plan_command(capsys):
    code, out, _ = run_cli(capsys, "plan", "--preset", "course-100m", "--gpu", "T4")
    assert code == 0
    assert "NVIDIA T4" in out and "largest micro-batch that fits" in out
    assert "--grad-accum" in out and "tokens/s" in out


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (["params"], "pass --vocab-size N or --data"),
        (["plan", "--vocab-size", "100", "--gpu", "V100"], "unknown GPU 'V100'"),
        (["plan", "--vocab-size", "100", "--mfu", "2"], "MFU must be in"),
    ],
)
def test_sizing_errors_are_one_line(capsys, args, pattern):
    code, out, err = run_cli(capsys, *args)
    assert code == 2 and pattern in err and len(err.strip().splitlines()) == 1
