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
