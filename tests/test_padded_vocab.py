"""A model whose vocabulary is padded past its tokenizer's (``--vocab-size 8192`` on a char
dataset) must never draw the padding ids: they decode to no text (issue 19's newcomer found
``train --vocab-size 8192`` crashing in its eval-time sample)."""

from __future__ import annotations

import torch

from minigpt.config import ModelConfig
from minigpt.config.sampling import SampleConfig
from minigpt.data.tokenizers.char import CharTokenizer
from minigpt.inference.batching import BatchEngine
from minigpt.inference.generate import generate_text, prompt_ids
from minigpt.model import GPT

TEXT = "abcde "


def padded_model() -> tuple[GPT, CharTokenizer]:
    """A tiny model with 64 vocabulary rows whose head strongly prefers the padding rows."""
    tokenizer = CharTokenizer.train([TEXT])
    torch.manual_seed(0)
    config = ModelConfig(n_layer=1, n_head=2, n_embd=16, block_size=16, vocab_size=64)
    model = GPT(config).eval()
    with torch.no_grad():
        model.lm_head.weight[tokenizer.vocab_size :] *= 50  # padding ids now win every argmax
    return model, tokenizer


def test_the_padding_ids_would_win_without_the_limit():
    model, tokenizer = padded_model()
    idx = torch.tensor([prompt_ids(tokenizer, "ab")])
    free = torch.cat(list(model.generate_tokens(idx, 8, temperature=0)), dim=1)
    assert free.max().item() >= tokenizer.vocab_size  # the case the limit exists for


def test_sampling_draws_only_ids_the_tokenizer_decodes():
    model, tokenizer = padded_model()
    for temperature in (0.0, 1.0):
        text = generate_text(model, tokenizer, "ab", max_new_tokens=40, temperature=temperature)
        assert len(text) == 42 and set(text) <= set(TEXT)


def test_the_server_engine_draws_only_ids_the_tokenizer_decodes():
    model, tokenizer = padded_model()
    engine = BatchEngine(model, tokenizer, max_batch=2).start()
    try:
        for temperature in (0.0, 1.0):
            config = SampleConfig(max_new_tokens=20, temperature=temperature, seed=1)
            events = engine.generate(prompt_ids(tokenizer, "ab"), config)
            text = "".join(e.text for e in events)
            assert len(text) == 20 and set(text) <= set(TEXT)
    finally:
        engine.stop()
