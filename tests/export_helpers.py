"""Tiny random minigpt runs for the export tests: every option combination the presets use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from minigpt.checkpoint import save_checkpoint
from minigpt.config import load_config
from minigpt.config.presets import MODERN_RECIPE, PRESETS
from minigpt.data.chat_template import CHAT_TOKENS, DEFAULT_TEMPLATE
from minigpt.data.special_tokens import add_special_tokens
from minigpt.data.tokenizer import BPETokenizer, Tokenizer
from minigpt.model import GPT
from tests.conftest import SMALL_TEXT
from tests.hf_helpers import randomize

# Azerbaijani (ə ı İ ş ğ ç ö ü), Cyrillic, CJK and emoji.
MULTILINGUAL = (
    "Salam, dünya! Azərbaycan dilində ə, ı, İ, ş, ğ, ç, ö, ü hərfləri var. İstanbul, Şəki.\n"
    "Привет, мир! Съешь же ещё этих мягких французских булок.\n"
    "你好，世界。我们在学习语言模型。\n"
    "Emoji: 😀🎉👍🏽 🇦🇿 — done.\n"
)
ARCHITECTURE = ("pos", "norm", "qk_norm", "mlp", "tie_embeddings", "logit_softcap", "bias")
ARCH_FIELDS = (*ARCHITECTURE, "zero_init_proj")
# The presets' option combinations (cpu-fast: the modern recipe as Qwen3; modern-124m: the
# modern recipe with ReLU² and the soft-cap; course-100m: GPT-2 without biases) and one per
# standard class.
MODERN = {k: v for k, v in MODERN_RECIPE.items() if k in ARCH_FIELDS}
CPU_FAST = {k: v for k, v in PRESETS["cpu-fast"].items() if k in ARCH_FIELDS}
COMBINATIONS: dict[str, tuple[dict[str, Any], str]] = {
    "gpt2-default": ({}, "gpt2"),
    "shakespeare-char": ({"mlp": "gelu_exact"}, "gpt2"),  # nanoGPT's exact GELU
    "rope-gelu-exact": ({"pos": "rope", "mlp": "gelu_exact"}, "minigpt"),
    "course-100m": ({"bias": False}, "gpt2"),
    "cpu-fast": (CPU_FAST, "qwen3"),
    "modern-124m": (MODERN, "minigpt"),
    "llama": (
        {"pos": "rope", "norm": "rmsnorm", "mlp": "swiglu", "rope_base": 500.0, "bias": False},
        "llama",
    ),
    "llama-bias-untied": (
        {"pos": "rope", "norm": "rmsnorm", "mlp": "swiglu", "tie_embeddings": False},
        "llama",
    ),
    "qwen3": (
        {"pos": "rope", "norm": "rmsnorm", "mlp": "swiglu", "qk_norm": True, "bias": False},
        "qwen3",
    ),
    "arcee": ({"pos": "rope", "norm": "rmsnorm", "mlp": "relu2", "bias": False}, "arcee"),
    "softcap-swiglu": ({**MODERN, "mlp": "swiglu"}, "minigpt"),
    "learned-rmsnorm-gelu": ({"norm": "rmsnorm", "qk_norm": True}, "minigpt"),
}
SHAPE = dict(n_layer=2, n_head=2, n_embd=32, block_size=32)


def bpe_tokenizer() -> BPETokenizer:
    """minigpt's byte-level BPE, trained on English and the multilingual sample."""
    return BPETokenizer.train([SMALL_TEXT, MULTILINGUAL * 3], vocab_size=400)


def chat_tokenizer() -> Tokenizer:
    """The BPE tokenizer with the chat tokens and the default chat template, as
    ``minigpt prepare --format chat`` makes it."""
    tok, _ = add_special_tokens(bpe_tokenizer(), CHAT_TOKENS)
    tok.chat_template = DEFAULT_TEMPLATE
    return tok


def random_run(
    folder: Path, options: dict[str, Any], tokenizer: Tokenizer, seed: int = 0, **shape: Any
) -> Path:
    """A run folder with one checkpoint of a random model (norm weights random too)."""
    values = {**SHAPE, **shape, **options, "vocab_size": tokenizer.vocab_size}
    config = load_config(overrides=values)
    model = GPT(config.model)
    randomize(model, seed)
    state = {"config": config.to_dict()}
    save_checkpoint(folder, 1, model, None, state, tokenizer)
    return folder
