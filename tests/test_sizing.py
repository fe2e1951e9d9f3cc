import dataclasses

import pytest
import torch

from minigpt.config import ModelConfig, load_config
from minigpt.errors import MiniGPTError
from minigpt.model import GPT
from minigpt.model.sizing import (
    GPT2_SMALL,
    GPT2_SMALL_PARAMS,
    course_figures,
    flops_per_token,
    format_breakdown,
    non_embedding_params,
    param_breakdown,
    param_totals,
    reconcile,
    sized_model_config,
)

SMALL = [
    dict(vocab_size=50, block_size=16, n_layer=2, n_head=2, n_embd=32),
    dict(vocab_size=50, block_size=16, n_layer=2, n_head=2, n_embd=32, bias=False),
    dict(vocab_size=97, block_size=7, n_layer=3, n_head=4, n_embd=24, tie_embeddings=False),
    dict(
        vocab_size=65,
        block_size=33,
        n_layer=1,
        n_head=1,
        n_embd=8,
        bias=False,
        tie_embeddings=False,
    ),
]


def assert_parts_match_model(config: ModelConfig, model: GPT) -> None:
    """Every part equals sum(numel) of its module, and the parts cover every parameter once."""
    params = dict(model.named_parameters())  # tied tensors appear once
    covered = set()
    for part in param_breakdown(config).parts():
        names = [n for n in params if n.startswith(part.prefix + ".")]
        assert part.count == sum(params[n].numel() for n in names), part.name
        assert not covered & set(names), part.name
        covered |= set(names)
    assert covered == set(params)
    assert param_breakdown(config).total == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("values", SMALL)
def test_every_part_matches_the_instantiated_model(values):
    config = ModelConfig(**values)
    assert_parts_match_model(config, GPT(config))


def test_gpt2_small_matches_the_published_count():
    with torch.device("meta"):
        model = GPT(GPT2_SMALL)
    assert_parts_match_model(GPT2_SMALL, model)
    assert param_breakdown(GPT2_SMALL).total == GPT2_SMALL_PARAMS == 124_439_808
    assert param_breakdown(GPT2_SMALL).block_total == 7_087_872


def test_totals_tied_untied_with_and_without_positions():
    config = load_config(preset="course-100m").model
    totals = param_totals(config)
    for tied in (True, False):
        variant = dataclasses.replace(config, tie_embeddings=tied)
        with torch.device("meta"):
            model = GPT(variant)
        assert totals[(tied, True)] == model.num_params()
        assert totals[(tied, False)] == model.num_params(non_embedding=True)
    assert totals[(True, True)] == 109_923_072
    assert totals[(False, True)] - totals[(True, True)] == 32000 * 768


def test_reconcile_steps_add_up_to_the_difference():
    config = ModelConfig(
        vocab_size=65, block_size=256, n_layer=6, n_head=6, n_embd=384, bias=False,
        tie_embeddings=False,
    )  # fmt: skip
    steps = reconcile(config)
    assert [s.split()[0] for s, _ in steps] == [
        "vocab_size", "block_size", "bias", "tie_embeddings", "n_layer", "n_embd"
    ]  # fmt: skip
    assert sum(d for _, d in steps) == param_breakdown(config).total - GPT2_SMALL_PARAMS
    assert reconcile(GPT2_SMALL) == []


def test_course_figures_are_derived_or_refuted():
    figures = [f for f, _ in course_figures()]
    assert figures == [124_439_808, 134_553_600, 124_417_536]


def test_format_breakdown_is_checked_against_the_model():
    text = format_breakdown(GPT2_SMALL)
    assert "124,439,808 (matches)" in text
    assert "768 x 2,304 + 2,304" in text and "1,771,776" in text
    assert "163,037,184" in text  # untied, with wpe
    assert "123,653,376" in text  # tied, without wpe
    assert f"{flops_per_token(GPT2_SMALL):,}" in text


def test_vocab_comes_from_the_dataset_or_must_be_given(dataset):
    with pytest.raises(MiniGPTError, match="--vocab-size N or --data"):
        sized_model_config(load_config())
    from_data = sized_model_config(load_config(overrides={"data": str(dataset)}))
    assert 10 < from_data.vocab_size < 60


def test_non_embedding_params_match_the_model():
    for bias in (True, False):
        for tie in (True, False):
            config = ModelConfig(
                vocab_size=50,
                block_size=16,
                n_layer=2,
                n_head=2,
                n_embd=32,
                bias=bias,
                tie_embeddings=tie,
            )
            model = GPT(config)
            embeddings = model.transformer.wte.weight.numel() + model.transformer.wpe.weight.numel()
            assert non_embedding_params(config) == model.num_params() - embeddings


def test_flops_per_token_gpt2_small():
    config = ModelConfig(vocab_size=50257, block_size=1024, n_layer=12, n_head=12, n_embd=768)
    with torch.device("meta"):
        model = GPT(config)
    n = model.num_params() - model.transformer.wpe.weight.numel()
    assert flops_per_token(config) == 6 * n + 12 * 12 * 1024 * 768


MODERN_OPTIONS = [
    dict(pos="rope"),
    dict(norm="rmsnorm"),
    dict(norm="rmsnorm", bias=False),
    dict(qk_norm=True),
    dict(mlp="relu2"),
    dict(mlp="swiglu"),
    dict(mlp="swiglu", bias=False),
    dict(tie_embeddings=False),
    dict(logit_softcap=30.0, zero_init_proj=True),
    dict(pos="rope", norm="rmsnorm", qk_norm=True, mlp="relu2", tie_embeddings=False, bias=False),
]


@pytest.mark.parametrize(
    "option", MODERN_OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items())
)
def test_each_option_parameter_count_matches_sizing(option):
    config = ModelConfig(vocab_size=50, block_size=16, n_layer=2, n_head=2, n_embd=48, **option)
    model = GPT(config)
    embeddings = model.transformer.wte.weight.numel()
    if "wpe" in model.transformer:
        embeddings += model.transformer.wpe.weight.numel()
    assert non_embedding_params(config) == model.num_params() - embeddings
    assert flops_per_token(config) > 6 * non_embedding_params(config)
    assert_parts_match_model(config, model)  # the `minigpt params` table, part by part
    assert f"{model.num_params():,}" in format_breakdown(config)
    # The reconciliation with GPT-2 small walks through the options too, and adds up.
    assert sum(d for _, d in reconcile(config)) == model.num_params() - GPT2_SMALL_PARAMS
