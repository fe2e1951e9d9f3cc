"""minigpt export --format hf, and runs that start from a Hugging Face folder."""

from __future__ import annotations

import json

import pytest
import torch

from minigpt.checkpoint import find_checkpoint, save_checkpoint
from minigpt.config import load_config
from minigpt.data.prepare import prepare_dataset
from minigpt.data.tokenizer import CharTokenizer
from minigpt.inference.generate import generate_text
from minigpt.interop.hf_import import load_hf
from minigpt.interop.loader import load_model
from minigpt.model import GPT
from minigpt.training.trainer import Trainer, train
from tests.conftest import SMALL_TEXT, TINY
from tests.hf_helpers import bpe_kind, gpt2_folder, hf_model, random_ids, transformers
from tests.test_cli import assert_one_line_error, run_cli

__all__ = ["bpe_kind"]  # a fixture, used by name

HF_FILES = {
    "README.md",
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
}


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A char model without biases (exported with zero biases), trained once for this module."""
    root = tmp_path_factory.mktemp("trained")
    (root / "small.txt").write_text(SMALL_TEXT, encoding="utf-8")
    ds = prepare_dataset([root / "small.txt"], root / "ds", quiet=True)
    values = {**TINY, "data": str(ds), "out_dir": str(root / "run"), "bias": False}
    return train(load_config(overrides=values)).run_dir


def test_export_loads_and_computes_the_same_in_transformers(tmp_path, trained_run, capsys):
    out = tmp_path / "export"
    code, stdout, _ = run_cli(capsys, "export", trained_run, "--format", "hf", "--out", out)
    assert code == 0 and "checked with transformers: logits match" in stdout
    assert "exported as zeros" in stdout
    assert {p.name for p in out.iterdir()} == HF_FILES

    ours, tokenizer = load_model(trained_run, device="cpu")
    theirs = hf_model(out)
    ids = random_ids(ours.config.vocab_size, ours.config.block_size)
    with torch.no_grad():
        assert (ours(ids)[0] - theirs(input_ids=ids).logits).abs().max() < 1e-4

    hf_tokenizer = transformers.AutoTokenizer.from_pretrained(out)
    text = SMALL_TEXT[:300]
    assert hf_tokenizer.encode(text) == tokenizer.encode(text)
    assert hf_tokenizer.decode(tokenizer.encode(text)) == text

    # Greedy continuations agree token for token.
    prompt = "To be, or"
    expected = generate_text(ours, tokenizer, prompt, max_new_tokens=6, temperature=0)
    prompt_ids = hf_tokenizer(prompt, return_tensors="pt").input_ids
    generated = theirs.generate(prompt_ids, max_new_tokens=6, do_sample=False)
    assert hf_tokenizer.decode(generated[0]) == expected

    # minigpt -> HF -> minigpt gives back every weight bit for bit, without the zero biases.
    original = find_checkpoint(trained_run).model_tensors()
    back = load_hf(out)
    assert back.config == ours.config
    assert back.tensors.keys() == original.keys()
    assert all(torch.equal(back.tensors[k], original[k]) for k in original)

    config = json.loads((out / "config.json").read_text())
    assert config["n_positions"] == TINY["block_size"] and config["minigpt"]["bias"] is False
    card = (out / "README.md").read_text()
    state = find_checkpoint(trained_run).state
    assert f"| iterations | {state['iteration']} |" in card
    assert f"| best val loss | {state['best_val_loss']:.4f}" in card
    assert "| started from | scratch |" in card and "| optimiser | AdamW, lr" in card


def test_sample_reads_an_exported_folder_like_the_run(tmp_path, trained_run, capsys):
    out = tmp_path / "export"
    run_cli(capsys, "export", trained_run, "--out", out, "--no-check")
    args = ["--prompt", "To be", "-m", "20", "--seed", "5", "--device", "cpu"]
    _, from_run, _ = run_cli(capsys, "sample", trained_run, *args)
    code, from_export, _ = run_cli(capsys, "sample", f"hf:{out}", *args)
    assert code == 0 and from_export == from_run and from_run.startswith("To be")


def test_eval_reads_an_exported_folder_like_the_run(tmp_path, trained_run, capsys):
    out = tmp_path / "export"
    code, stdout, _ = run_cli(capsys, "export", trained_run, "--out", out, "--best", "--no-check")
    best = find_checkpoint(trained_run, best=True)
    assert code == 0 and f"(iteration {best.iteration})" in stdout
    text = tmp_path / "text.txt"
    text.write_text(SMALL_TEXT[:500], encoding="utf-8")
    args = ["--data", text, "--json", "--no-progress", "--device", "cpu"]
    _, from_run, _ = run_cli(capsys, "eval", trained_run, "--best", *args)
    code, from_export, _ = run_cli(capsys, "eval", f"hf:{out}", *args)
    assert code == 0 and json.loads(from_export) == json.loads(from_run)


def test_export_in_half_precision(tmp_path, trained_run, capsys):
    out = tmp_path / "export"
    code, stdout, _ = run_cli(capsys, "export", trained_run, "--out", out, "--dtype", "bfloat16")
    assert code == 0 and "logits match" in stdout
    assert json.loads((out / "config.json").read_text())["torch_dtype"] == "bfloat16"
    assert load_hf(out).tensors["transformer.wte.weight"].dtype == torch.float32  # upcast


def test_export_refuses_to_overwrite(tmp_path, trained_run, capsys):
    out = tmp_path / "export"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    code, _, err = run_cli(capsys, "export", trained_run, "--out", out)
    assert_one_line_error(code, err, "pass --force to replace it")
    assert (out / "keep.txt").read_text() == "mine"


def test_fine_tune_a_gpt2_folder_and_export_it(tmp_path, text_file, bpe_kind, capsys):
    gpt2 = gpt2_folder(tmp_path / "gpt2", SMALL_TEXT)
    ds = tmp_path / "ds"
    code, stdout, _ = run_cli(
        capsys, "prepare", text_file, "--tokenizer", f"hf:{gpt2}", "--out", ds
    )
    assert code == 0 and "bpe tokenizer" in stdout

    # The model's shape comes from the folder; block_size 16 keeps the first 16 positions.
    values = {**TINY, "data": str(ds), "out_dir": str(tmp_path / "ft"), "n_layer": 5}
    trainer = Trainer(load_config(overrides=values), init_from=f"hf:{gpt2}")
    source = load_hf(gpt2, block_size=16)
    assert trainer.config.model.n_layer == 2 and trainer.config.model.block_size == 16
    state = trainer.model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in source.tensors.items())
    trainer.run(until=2)

    out = tmp_path / "export"
    code, stdout, _ = run_cli(capsys, "export", tmp_path / "ft", "--out", out)
    assert code == 0 and "tokenizer ids match" in stdout
    assert f"| started from | `hf:{gpt2}` |" in (out / "README.md").read_text()
    assert json.loads((out / "tokenizer.json").read_text()) == json.loads(
        (gpt2 / "tokenizer.json").read_text()
    )
    tokenizer_config = json.loads((out / "tokenizer_config.json").read_text())
    assert tokenizer_config["eos_token"] == "<|endoftext|>"
    eot = source.tokenizer.eot_id
    assert json.loads((out / "generation_config.json").read_text())["eos_token_id"] == eot


def test_init_from_hf_needs_a_dataset_with_its_tokenizer(tmp_path, dataset, bpe_kind, capsys):
    gpt2 = gpt2_folder(tmp_path / "gpt2", SMALL_TEXT)
    code, _, err = run_cli(
        capsys, "train", "--data", dataset, "--init-from", f"hf:{gpt2}", "--device", "cpu"
    )
    assert_one_line_error(code, err, f"--tokenizer hf:{gpt2}")


def test_export_without_remote_code_refuses_what_no_class_computes_in_one_line(tmp_path, capsys):
    """Rotary + RMSNorm + GELU: no transformers class; refused by name, nothing written."""
    config = load_config(overrides={**TINY, "vocab_size": 40, "pos": "rope", "norm": "rmsnorm"})
    tokenizer = CharTokenizer.train([SMALL_TEXT])
    state = {"config": config.to_dict()}
    save_checkpoint(tmp_path / "run", 1, GPT(config.model), None, state, tokenizer)
    out = tmp_path / "export"
    code, _, err = run_cli(capsys, "export", tmp_path / "run", "--out", out, "--no-remote-code")
    assert_one_line_error(code, err, "the closest, Llama, cannot express its mlp='gelu'")
    assert not out.exists()
