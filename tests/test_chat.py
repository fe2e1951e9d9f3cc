import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from minigpt.config.sampling import SampleConfig
from minigpt.errors import MiniGPTError
from minigpt.inference.chat import ChatState, apply_command, chat
from minigpt.inference.generate import make_generator
from minigpt.interop.loader import load_model

SRC = str(Path(__file__).resolve().parents[1] / "src")


def state():
    return ChatState(SampleConfig(), make_generator("cpu", 1))


def test_commands_change_the_controls():
    s = state()
    assert apply_command(s, "/temperature 0.5", 16) == "(temperature = 0.5)"
    apply_command(s, "/top-k 0", 16)
    apply_command(s, "/seed none", 16)
    apply_command(s, "/stop \\n\\n", 16)
    apply_command(s, "/stop END", 16)
    c = s.config
    assert (c.temperature, c.top_k, c.seed, c.stop) == (0.5, 0, None, ("\n\n", "END"))
    apply_command(s, "/stop none", 16)
    assert s.config.stop == ()
    assert apply_command(s, "/top_p", 16) == "top_p = 1.0"
    assert "/repetition_penalty" in apply_command(s, "/help", 16)
    apply_command(s, "/quit", 16)
    assert s.done


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("/tempreature 1", "did you mean 'temperature'"),
        ("/top_p 2", "top_p must be in"),
        ("/temperature inf", "temperature must be a finite number"),
        ("/repetition_penalty nan", "repetition_penalty must be a finite number"),
        ("/max_new_tokens many", "expects int"),
        ("/context_shift 99", "between 1 and block_size"),
        ("/num_samples 3", "unknown command"),
    ],
)
def test_bad_commands_are_one_line_errors(line, message):
    s = state()
    with pytest.raises(MiniGPTError, match=message):
        apply_command(s, line, 16)
    assert s.config == SampleConfig()


def scripted(lines):
    lines = iter(lines)

    def read(prompt):
        try:
            return next(lines)
        except StopIteration:
            raise EOFError from None

    return read


def test_chat_loop_with_controls_between_turns(trained_run):
    model, tok = load_model(trained_run, device="cpu")
    out = []
    lines = [
        "/temperature 0",
        "To be",
        "To be",
        "Zebra",
        "/history on",
        "To be",
        "",
        "/quit",
        "never",
    ]
    chat(model, tok, SampleConfig(max_new_tokens=12), False, scripted(lines), out.append)
    text = "".join(out)
    turns = [t for t in text.split("\n") if t and not t.startswith(("(", "minigpt", "error"))]
    assert turns[0] == turns[1] and len(turns[0]) == 12  # greedy: the same continuation twice
    assert "(history on)" in text and "never" not in text
    assert "error: text has characters the char vocabulary lacks: 'Z'" in text


def test_ctrl_c_stops_one_answer_only(trained_run):
    model, tok = load_model(trained_run, device="cpu")
    out, pressed = [], []

    def write(text):
        out.append(text)
        if turns_started(out) and not pressed:  # Ctrl-C at the first piece of the first answer
            pressed.append(True)
            raise KeyboardInterrupt

    chat(model, tok, SampleConfig(max_new_tokens=8), True, scripted(["To be", "To"]), write)
    text = "".join(out)
    assert text.count("[stopped]") == 1
    assert text.rstrip("\n").split("\n")[-1]  # the second turn still answered


def turns_started(out):
    return len(out) > 1  # out[0] is the banner


def run_chat(run_dir, stdin_text=None, interrupt=False):
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "minigpt", "chat", str(run_dir), "-m", "10", "--no-history"]
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    if interrupt:
        # Wait for the prompt, then press Ctrl-C while the loop waits for input.
        seen = ""
        while not seen.endswith("> "):
            char = proc.stdout.read(1)
            assert char, proc.stderr.read()
            seen += char
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        return proc.returncode, seen + out, err
    out, err = proc.communicate(stdin_text, timeout=120)
    return proc.returncode, out, err


def test_chat_command_reads_stdin_and_exits_on_eof(trained_run):
    code, out, err = run_chat(trained_run, "/temperature 0\nTo be\nTo be\n/bogus\n")
    assert code == 0, err
    assert "Traceback" not in err
    assert "(temperature = 0.0)" in out and "unknown command /bogus" in out
    lines = [line[2:] for line in out.split("\n") if line.startswith("> ")]
    answers = [line for line in lines if line and not line.startswith(("(", "error"))]
    assert len(answers) == 2 and answers[0] == answers[1] and len(answers[0]) == 10


def test_chat_command_exits_cleanly_on_ctrl_c(trained_run):
    code, out, err = run_chat(trained_run, interrupt=True)
    assert code == 0 and "Traceback" not in err and "interrupted" not in err
