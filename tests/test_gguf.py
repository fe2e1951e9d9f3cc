"""minigpt export --format gguf: read back by transformers' GGUF loader and by llama.cpp."""

from __future__ import annotations

import pytest
import torch

from minigpt.data.chat_template import DEFAULT_TEMPLATE
from minigpt.data.tokenizer import CharTokenizer
from minigpt.interop.gguf import export_gguf
from minigpt.interop.gguf_check import (
    gguf_logit_diff,
    llama_cpp_greedy,
    open_llama_cpp,
)
from minigpt.interop.loader import load_model
from tests.conftest import SMALL_TEXT
from tests.export_helpers import (
    COMBINATIONS,
    MULTILINGUAL,
    bpe_tokenizer,
    chat_tokenizer,
    random_run,
)
from tests.hf_helpers import transformers
from tests.test_cli import assert_one_line_error, run_cli

pytest.importorskip("gguf")
pytest.importorskip("accelerate")  # transformers' GGUF loader needs it

GGUF_COMBINATIONS = {
    name: COMBINATIONS[name]
    for name in ("gpt2-default", "course-100m", "cpu-fast", "llama", "qwen3")
}
GGUF_COMBINATIONS["llama-untied"] = ({**COMBINATIONS["llama"][0], "tie_embeddings": False}, "llama")


@pytest.fixture(scope="module")
def tokenizer():
    return bpe_tokenizer()


@pytest.mark.parametrize("name", GGUF_COMBINATIONS)
def test_transformers_reads_the_f32_gguf_with_minigpts_logits(tmp_path, tokenizer, name):
    options, model_type = GGUF_COMBINATIONS[name]
    run = random_run(tmp_path / "run", options, tokenizer, seed=7)
    result = export_gguf(run, tmp_path / "model.gguf")
    assert result.architecture == model_type
    model, _ = load_model(run, device="cpu")
    assert gguf_logit_diff(result.path, model) < 1e-4


@pytest.mark.parametrize(("quant", "bound"), [("f16", 2e-2), ("q8_0", 0.15)])
def test_quantized_gguf_stays_close(tmp_path, tokenizer, quant, bound):
    """f16 and q8_0 round the weights: close, not exact (the measured error is recorded in
    BENCHMARKS.md; the bound here only catches a broken layout, which is off by whole units)."""
    run = random_run(tmp_path / "run", COMBINATIONS["qwen3"][0], tokenizer, seed=7)
    f32 = export_gguf(run, tmp_path / "f32.gguf")
    small = export_gguf(run, tmp_path / f"{quant}.gguf", quant=quant)
    assert small.size < f32.size
    model, _ = load_model(run, device="cpu")
    assert 0 < gguf_logit_diff(small.path, model) < bound


def test_gguf_tokenizer_encodes_multilingual_text_like_minigpt(tmp_path, tokenizer):
    run = random_run(tmp_path / "run", COMBINATIONS["qwen3"][0], tokenizer)
    path = export_gguf(run, tmp_path / "model.gguf").path
    theirs = transformers.AutoTokenizer.from_pretrained(tmp_path, gguf_file=path.name)
    ids = tokenizer.encode(MULTILINGUAL)
    assert theirs.encode(MULTILINGUAL, add_special_tokens=False) == ids
    assert theirs.decode(ids) == MULTILINGUAL


def test_ollama_modelfile(tmp_path, tokenizer, capsys):
    run = random_run(tmp_path / "run", COMBINATIONS["llama"][0], tokenizer)
    out = tmp_path / "m" / "model.gguf"
    code, stdout, _ = run_cli(
        capsys, "export", run, "--format", "gguf", "--out", out, "--quant", "q8_0", "--ollama"
    )
    assert code == 0 and "checked with transformers' GGUF reader" in stdout
    assert f"to {out}, {out.parent / 'Modelfile'} (" in stdout
    assert "note: llama.cpp architecture llama, weights q8_0" in stdout
    modelfile = (tmp_path / "m" / "Modelfile").read_text()
    assert "FROM ./model.gguf\n" in modelfile
    assert 'TEMPLATE """{{ .Prompt }}"""' in modelfile
    assert 'PARAMETER stop "<|endoftext|>"' in modelfile
    assert "PARAMETER num_ctx 32" in modelfile


def test_ollama_modelfile_renders_the_chat_template(tmp_path):
    tokenizer = chat_tokenizer()
    run = random_run(tmp_path / "run", COMBINATIONS["qwen3"][0], tokenizer)
    export_gguf(run, tmp_path / "model.gguf", ollama=True)
    modelfile = (tmp_path / "Modelfile").read_text()
    assert (
        'TEMPLATE """{{ if .System }}<|system|>{{ .System }}<|end|><|user|>{{ .Prompt }}<|end|>'
        '<|assistant|>{{ else }}<|user|>{{ .Prompt }}<|end|><|assistant|>{{ end }}"""'
    ) in modelfile
    assert 'PARAMETER stop "<|end|>"\nPARAMETER stop "<|endoftext|>"\n' in modelfile
    reader = pytest.importorskip("gguf").GGUFReader(tmp_path / "model.gguf")
    assert reader.get_field("tokenizer.chat_template").contents() == DEFAULT_TEMPLATE
    eot = reader.get_field("tokenizer.ggml.eot_token_id").contents()
    assert eot == tokenizer.special_tokens["<|end|>"]
    # The chat tokens are CONTROL tokens of the GGUF vocabulary, at minigpt's ids.
    theirs = transformers.AutoTokenizer.from_pretrained(tmp_path, gguf_file="model.gguf")
    assert (
        theirs.convert_tokens_to_ids("<|assistant|>") == tokenizer.special_tokens["<|assistant|>"]
    )


@pytest.mark.parametrize(
    ("options", "args", "pattern"),
    [
        (COMBINATIONS["modern-124m"][0], [], "the closest, Qwen3, cannot express its mlp='relu2'"),
        (
            COMBINATIONS["arcee"][0],
            [],
            "cannot express its mlp='relu2'; export it with --format hf",
        ),
        ({}, ["--dtype", "float16"], "GGUF takes --quant"),
        (
            COMBINATIONS["shakespeare-char"][0],
            [],
            "exact GELU (mlp=gelu_exact) and llama.cpp's gpt2 computes only GPT-2's tanh",
        ),
    ],
)
def test_gguf_refusals_are_one_line(tmp_path, tokenizer, capsys, options, args, pattern):
    run = random_run(tmp_path / "run", options, tokenizer)
    out = tmp_path / "model.gguf"
    code, _, err = run_cli(capsys, "export", run, "--format", "gguf", "--out", out, *args)
    assert_one_line_error(code, err, pattern)
    assert not out.exists()


def test_gguf_refuses_a_char_vocabulary_an_existing_file_and_no_checkpoint(tmp_path, capsys):
    tok = CharTokenizer.train([SMALL_TEXT])
    run = random_run(tmp_path / "run", {}, tok)
    out = tmp_path / "model.gguf"
    code, _, err = run_cli(capsys, "export", run, "--format", "gguf", "--out", out)
    assert_one_line_error(code, err, "llama.cpp refuses one without merges")
    out.write_text("mine")
    code, _, err = run_cli(capsys, "export", run, "--format", "gguf", "--out", out)
    assert_one_line_error(code, err, "already exists; choose another --out or pass --force")
    assert out.read_text() == "mine"
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(capsys, "export", tmp_path / "empty", "--format", "gguf", "--out", out)
    assert code != 0 and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_llama_cpp_greedy_tokens_equal_minigpts(tmp_path, tokenizer):
    """llama.cpp itself (skipped where llama-cpp-python is not installed: it compiles
    llama.cpp, too slow for CI)."""
    pytest.importorskip("llama_cpp")
    for name in ("gpt2-default", "llama", "qwen3", "cpu-fast"):
        run = random_run(tmp_path / name, COMBINATIONS[name][0], tokenizer, seed=2, block_size=64)
        path = export_gguf(run, tmp_path / f"{name}.gguf").path
        model, _ = load_model(run, device="cpu")
        prompt = tokenizer.encode("To be, or not")
        mine = model.generate(torch.tensor([prompt]), 40, temperature=0.0)[0, len(prompt) :]
        llm = open_llama_cpp(path, n_ctx=64)
        assert llama_cpp_greedy(llm, prompt, 40) == mine.tolist(), name
    # llama.cpp's own tokenizer, from the file: the same ids on the multilingual text.
    ids = llm.tokenize(MULTILINGUAL.encode(), add_bos=False, special=False)
    assert ids == tokenizer.encode(MULTILINGUAL)
    assert llm.detokenize(ids).decode() == MULTILINGUAL
