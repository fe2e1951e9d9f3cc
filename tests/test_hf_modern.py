"""Every minigpt model exports to Hugging Face and comes back: the exact transformers class
(GPT-2, Llama, Qwen3, Arcee) or minigpt's remote code, checked by logits and greedy tokens."""

from __future__ import annotations

import json

import pytest
import torch

from minigpt.config import load_config
from minigpt.data.chat_template import DEFAULT_TEMPLATE, render
from minigpt.data.dataset import Dataset
from minigpt.interop.hf_check import load_transformers_model
from minigpt.interop.hf_export import export_hf
from minigpt.interop.loader import load_model
from minigpt.training.trainer import Trainer
from tests.conftest import TINY
from tests.export_helpers import (
    COMBINATIONS,
    MULTILINGUAL,
    bpe_tokenizer,
    chat_tokenizer,
    random_run,
)
from tests.hf_helpers import random_ids, transformers
from tests.test_cli import run_cli


@pytest.fixture(scope="module")
def tokenizer():
    return bpe_tokenizer()


@pytest.mark.parametrize("name", list(COMBINATIONS))
def test_export_computes_minigpts_logits_and_imports_back_exactly(tmp_path, tokenizer, name):
    options, model_type = COMBINATIONS[name]
    run = random_run(tmp_path / "run", options, tokenizer, seed=len(name))
    # The export's own check: transformers' logits within 1e-4, greedy generate() equal,
    # weights back bit for bit, tokenizer ids equal (on the multilingual check text).
    result = export_hf(run, tmp_path / "hf")
    assert result.max_logit_diff is not None and result.max_logit_diff < 1e-4
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert config["model_type"] == model_type
    assert ("auto_map" in config) is (model_type == "minigpt")

    ours, _ = load_model(run, device="cpu")
    back, _ = load_model(f"hf:{tmp_path / 'hf'}", device="cpu")
    theirs = load_transformers_model(tmp_path / "hf")
    ids = random_ids(ours.config.vocab_size, ours.config.block_size)
    with torch.no_grad():
        logits = ours(ids)[0]
        assert torch.equal(back(ids)[0], logits)  # the round trip is exact
        assert (theirs(input_ids=ids).logits - logits).abs().max() < 1e-4


def test_exact_gelu_exports_as_transformers_erf_gelu_and_imports_back(tmp_path, tokenizer):
    run = random_run(tmp_path / "run", COMBINATIONS["shakespeare-char"][0], tokenizer)
    export_hf(run, tmp_path / "hf")
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert config["activation_function"] == "gelu"  # transformers' erf GELU, not gelu_new
    theirs = load_transformers_model(tmp_path / "hf")
    x = torch.linspace(-4.0, 4.0, 81)
    assert torch.equal(theirs.transformer.h[0].mlp.act(x), torch.nn.functional.gelu(x))
    back, _ = load_model(f"hf:{tmp_path / 'hf'}", device="cpu")
    assert back.config.mlp == "gelu_exact"


@pytest.mark.parametrize("name", ["modern-124m", "cpu-fast"])
def test_transformers_greedy_generate_equals_minigpt_sample(tmp_path, tokenizer, name, capsys):
    run = random_run(tmp_path / "run", COMBINATIONS[name][0], tokenizer, seed=5, block_size=64)
    out = tmp_path / "hf"
    assert export_hf(run, out).max_logit_diff is not None
    prompt = "To be, or"
    code, stdout, _ = run_cli(
        capsys, "sample", run, "--prompt", prompt, "-m", 40, "--temperature", 0, "--device", "cpu"
    )
    assert code == 0
    theirs = load_transformers_model(out)
    hf_tok = transformers.AutoTokenizer.from_pretrained(
        out, trust_remote_code=name == "modern-124m"
    )
    ids = hf_tok(prompt, return_tensors="pt").input_ids
    generated = theirs.generate(ids, max_new_tokens=40, do_sample=False, pad_token_id=0)[0]
    # Both stop at the end-of-text token (minigpt sample prints the text before it).
    stopped = generated[-1] == tokenizer.eot_id
    assert len(generated) == len(ids[0]) + 40 or stopped
    text = hf_tok.decode(generated, skip_special_tokens=True)
    assert text.startswith(prompt) and stdout == text + "\n"


def test_hf_tokenizer_encodes_multilingual_text_like_minigpt(tmp_path, tokenizer):
    run = random_run(tmp_path / "run", COMBINATIONS["qwen3"][0], tokenizer)
    export_hf(run, tmp_path / "hf", check=False)
    hf_tok = transformers.AutoTokenizer.from_pretrained(tmp_path / "hf")
    ids = tokenizer.encode(MULTILINGUAL)
    assert hf_tok.encode(MULTILINGUAL, add_special_tokens=False) == ids
    assert hf_tok.decode(ids) == MULTILINGUAL


def test_chat_template_travels_into_the_export(tmp_path):
    tokenizer = chat_tokenizer()
    run = random_run(tmp_path / "run", COMBINATIONS["llama"][0], tokenizer)
    export_hf(run, tmp_path / "hf")  # with the check: the extended tokenizer encodes alike
    hf_tok = transformers.AutoTokenizer.from_pretrained(tmp_path / "hf")
    messages = [
        {"role": "system", "content": "Qısa cavab ver."},
        {"role": "user", "content": "Salam!"},
    ]
    rendered = hf_tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert rendered == render(DEFAULT_TEMPLATE, messages, add_generation_prompt=True)
    assert rendered == "<|system|>Qısa cavab ver.<|end|><|user|>Salam!<|end|><|assistant|>"


def test_model_card_names_the_architecture_and_options(tmp_path, tokenizer):
    run = random_run(tmp_path / "run", COMBINATIONS["modern-124m"][0], tokenizer)
    export_hf(run, tmp_path / "hf", check=False)
    card = (tmp_path / "hf" / "README.md").read_text()
    assert "| transformers architecture | minigpt (remote code) (`model_type: minigpt`) |" in card
    assert "rotary (base 10000); norm: rmsnorm + QK-norm; MLP: relu2; logits soft-capped" in card
    assert "trust_remote_code=True" in card
    assert {"modeling_minigpt.py", "configuration_minigpt.py"} <= {
        p.name for p in (tmp_path / "hf").iterdir()
    }


@pytest.mark.parametrize("name", ["cpu-fast", "modern-124m"])
def test_fine_tuning_starts_from_an_export_with_its_architecture(tmp_path, name, dataset):
    """--init-from hf:DIR of a modern export: the same architecture and the same weights."""
    tok = Dataset(dataset).tokenizer()  # the dataset's own (char) tokenizer
    run = random_run(tmp_path / "run", COMBINATIONS[name][0], tok, block_size=16)
    export_hf(run, tmp_path / "hf", check=False)
    values = {**TINY, "data": str(dataset), "out_dir": str(tmp_path / "ft")}
    trainer = Trainer(load_config(overrides=values), init_from=f"hf:{tmp_path / 'hf'}")
    ours, _ = load_model(run, device="cpu")
    assert trainer.config.model.mlp == ours.config.mlp
    assert trainer.config.model.qk_norm == ours.config.qk_norm
    ids = random_ids(ours.config.vocab_size, 16)
    trainer.model.eval()
    with torch.no_grad():
        assert torch.equal(trainer.model(ids)[0], ours(ids)[0])


def test_remote_code_qk_norm_takes_the_fused_path_under_autocast(tmp_path, tokenizer):
    import warnings

    options, model_type = COMBINATIONS["learned-rmsnorm-gelu"]  # RMSNorm + QK-norm, remote code
    run = random_run(tmp_path / "run", options, tokenizer, seed=3)
    export_hf(run, tmp_path / "hf")
    theirs = load_transformers_model(tmp_path / "hf")
    ids = random_ids(theirs.config.vocab_size, 16)
    with torch.no_grad():
        ref = theirs(input_ids=ids).logits
        with warnings.catch_warnings(record=True) as caught, torch.autocast("cpu", torch.bfloat16):
            warnings.simplefilter("always")
            out = theirs(input_ids=ids).logits
    assert model_type == "minigpt"
    assert not [w for w in caught if "Mismatch dtype" in str(w.message)]
    assert ((out.float() - ref).norm() / ref.norm()).item() < 0.05
