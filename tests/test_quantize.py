"""Int8 inference (model/quantize.py): what changes, what must not, and the clear refusals."""

from __future__ import annotations

import json

import pytest
import torch

from minigpt.cli import main
from minigpt.config import ModelConfig
from minigpt.errors import MiniGPTError
from minigpt.evaluation.evaluate import evaluate_checkpoint
from minigpt.inference.generate import generate_text
from minigpt.interop.loader import load_model
from minigpt.model import GPT
from minigpt.model.quantize import is_quantized, quantize_model


def tiny_model(**overrides) -> GPT:
    torch.manual_seed(0)
    config = dict(vocab_size=65, block_size=32, n_layer=2, n_head=2, n_embd=64, dropout=0.0)
    return GPT(ModelConfig(**{**config, **overrides})).eval()


def linears(model: torch.nn.Module) -> list[str]:
    return [n for n, m in model.named_modules() if type(m) is torch.nn.Linear]


@pytest.mark.parametrize("mode", ["int8", "int4", "int8-dynamic"])
def test_a_large_head_becomes_int8_and_the_embedding_stays_fp32(mode):
    model = tiny_model(vocab_size=4096)  # the head: 73% of the linear weights, as GPT-2's 31%
    wte = model.transformer.wte.weight.detach().clone()
    assert linears(model) and not is_quantized(model)
    assert quantize_model(model, mode) is model
    assert linears(model) == [] and is_quantized(model)
    # The tied head got its own int8 copy; the embedding it shared is untouched.
    assert torch.equal(model.transformer.wte.weight, wte)
    assert model.transformer.wte.weight.dtype == torch.float32


@pytest.mark.parametrize("mode", ["int8", "int4", "int8-dynamic"])
def test_a_small_head_stays_fp32(mode):
    model = tiny_model()  # a character vocabulary: the head is 4% of the linear weights
    head = model.lm_head.weight.detach().clone()
    quantize_model(model, mode)
    assert linears(model) == ["lm_head"] and is_quantized(model)
    assert torch.equal(model.lm_head.weight, head)


@pytest.mark.parametrize("mode", ["int8", "int8-dynamic"])
@pytest.mark.parametrize("modern", [False, True])
def test_int8_logits_stay_close_to_fp32(modern, mode):
    options = dict(pos="rope", norm="rmsnorm", qk_norm=True, mlp="relu2", tie_embeddings=False)
    model = tiny_model(**(options if modern else {}))
    idx = torch.randint(0, 65, (3, 32), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref, _ = model(idx)
        quantize_model(model, mode)
        out, _ = model(idx)
    assert is_quantized(model) and linears(model) == ["lm_head"]  # a small head stays fp32
    assert not torch.equal(out, ref)  # it really runs other kernels
    assert out.dtype == torch.float32
    assert ((out - ref).norm() / ref.norm()).item() < 0.05


def test_int8_is_weight_only_and_int8_dynamic_rounds_the_activations():
    from minigpt.model.quantize import Int8WeightLinear

    weight_only = quantize_model(tiny_model(), "int8")
    block = weight_only.transformer.h[0]
    assert isinstance(block.mlp.c_fc, Int8WeightLinear)
    assert isinstance(block.attn.c_attn, Int8WeightLinear)
    dynamic = quantize_model(tiny_model(), "int8-dynamic")
    layer = dynamic.transformer.h[0].mlp.c_fc
    assert not isinstance(layer, Int8WeightLinear) and "quantized" in type(layer).__module__


def test_int4_computes_with_the_grouped_weights_it_stores():
    from minigpt.model.quantize import INT4_GROUP, Int4WeightLinear

    # Each group of 32 input channels holds 16 evenly spaced values (its own min and step),
    # which 4 bits with a per-group offset and scale store exactly: only bf16 rounding remains.
    torch.manual_seed(0)
    rows, cols = 32, 3 * INT4_GROUP
    low = torch.randn(rows, cols // INT4_GROUP, 1)
    step = torch.rand(rows, cols // INT4_GROUP, 1) * 0.1 + 0.01
    levels = torch.randint(0, 16, (rows, cols // INT4_GROUP, INT4_GROUP)).float()
    levels[..., 0], levels[..., 1] = 0, 15  # every group spans its whole range
    weight = (low + step * levels).reshape(rows, cols)
    linear = torch.nn.Linear(cols, rows)
    linear.weight.data = weight
    x = torch.randn(5, cols)
    out = Int4WeightLinear(linear)(x)
    ref = linear(x)
    assert out.dtype == torch.float32 and out.shape == ref.shape
    assert ((out - ref).norm() / ref.norm()).item() < 1e-2
    # An ordinary weight is rounded to its group's 16 levels: a larger, bounded error.
    linear.weight.data = torch.randn(rows, cols)
    rough = ((Int4WeightLinear(linear)(x) - linear(x)).norm() / linear(x).norm()).item()
    assert 1e-2 < rough < 0.2


def test_int4_keeps_int8_where_the_width_is_not_a_multiple_of_the_group():
    from minigpt.model.quantize import Int4WeightLinear, Int8WeightLinear

    model = quantize_model(tiny_model(n_embd=48), "int4")  # 48 inputs: not groups of 32
    mlp = model.transformer.h[0].mlp
    assert isinstance(mlp.c_fc, Int8WeightLinear)  # 48 -> 192
    assert isinstance(mlp.c_proj, Int4WeightLinear)  # 192 -> 48


def test_none_leaves_the_model_alone():
    model = tiny_model()
    quantize_model(model, "none")
    assert not is_quantized(model) and linears(model)


def test_unknown_mode_and_gpu_models_are_refused():
    with pytest.raises(MiniGPTError, match="unknown quantization 'int3'"):
        quantize_model(tiny_model(), "int3")
    model = tiny_model()
    meta = model.to("meta")  # stands in for a model on a GPU: not on the CPU
    with pytest.raises(MiniGPTError, match="runs on the CPU only.*--device cpu"):
        quantize_model(meta, "int8")


def test_loader_sample_and_eval_take_quantize(trained_run, capsys):
    model, tok = load_model(trained_run, device="auto", quantize="int8")
    assert is_quantized(model) and next(model.parameters()).device.type == "cpu"
    fp32, _ = load_model(trained_run, device="cpu")
    greedy = dict(temperature=0.0, seed=0)
    # A tiny trained model: int8 rounding leaves its greedy continuation as it was.
    assert generate_text(model, tok, "To be", 24, **greedy) == generate_text(
        fp32, tok, "To be", 24, **greedy
    )
    assert main(["sample", str(trained_run), "--quantize", "int8", "-m", "10", "--seed", "1"]) == 0
    assert len(capsys.readouterr().out) > 10
    assert main(["sample", str(trained_run), "--quantize", "int4", "-m", "10", "--seed", "1"]) == 0
    assert len(capsys.readouterr().out) > 10


def test_eval_with_int8_is_within_a_percent(trained_run, dataset):
    fp32 = evaluate_checkpoint(trained_run, dataset, device="cpu")
    int8 = evaluate_checkpoint(trained_run, dataset, device="cpu", quantize="int8")
    assert int8.tokens == fp32.tokens
    assert int8.loss != fp32.loss
    assert abs(int8.perplexity / fp32.perplexity - 1) < 0.01
    with pytest.raises(MiniGPTError, match="computes in float32"):
        evaluate_checkpoint(trained_run, dataset, quantize="int8", dtype="bfloat16")


def test_eval_cli_quantize(trained_run, dataset, capsys):
    code = main(["eval", str(trained_run), "--data", str(dataset), "--quantize", "int8", "--json"])
    assert code == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["loss"] > 0


def test_serve_loads_its_models_quantized(trained_run):
    pytest.importorskip("fastapi")
    from minigpt.serve.registry import load_served
    from minigpt.serve.settings import ServeConfig

    served = load_served([f"tiny={trained_run}"], ServeConfig(device="auto", quantize="int8"))
    assert is_quantized(served["tiny"].model)
    assert not is_quantized(
        load_served([str(trained_run)], ServeConfig(device="cpu"))[trained_run.name].model
    )
