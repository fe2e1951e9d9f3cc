import pytest
import torch

from minigpt.config import ModelConfig
from minigpt.model import GPT
from minigpt.sizing import flops_per_token, non_embedding_params


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
