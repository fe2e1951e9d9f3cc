"""Offline fixtures for the Hugging Face tests: tiny GPT-2 folders built here, never downloaded."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")
transformers.utils.logging.disable_progress_bar()  # stderr stays for minigpt's own messages

from minigpt.data.tokenizer import TOKENIZERS, Tokenizer  # noqa: E402

EOT = "<|endoftext|>"


class FileBPETokenizer(Tokenizer):
    """A minimal 'bpe' kind over a tokenizers-library file, used only until minigpt has its
    own (the real one, where registered, is used instead: see ``bpe_kind``)."""

    kind = "bpe"

    def __init__(self, data: dict) -> None:
        self.data = data
        self.tok = tokenizers.Tokenizer.from_str(json.dumps(data))

    @property
    def vocab_size(self) -> int:
        return self.tok.get_vocab_size()

    @property
    def special_tokens(self) -> dict[str, int]:
        return {t.content: i for i, t in self.tok.get_added_tokens_decoder().items() if t.special}

    def encode(self, text: str) -> list[int]:
        return self.tok.encode(text, add_special_tokens=False).ids

    def decode(self, ids) -> str:
        return self.tok.decode(list(ids), skip_special_tokens=False)

    def to_json(self) -> dict:
        return self.data

    @classmethod
    def from_json(cls, data: dict) -> FileBPETokenizer:
        return cls(data)


@pytest.fixture
def bpe_kind(monkeypatch):
    """Make sure load_tokenizer can read tokenizers-library files (kind 'bpe')."""
    if "bpe" not in TOKENIZERS:
        monkeypatch.setitem(TOKENIZERS, "bpe", FileBPETokenizer)


def byte_level_bpe(text: str, vocab_size: int = 300):
    """A GPT-2-style byte-level BPE tokenizer trained on ``text``, with an end-of-text token."""
    tok = tokenizers.Tokenizer(tokenizers.models.BPE())
    tok.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = tokenizers.decoders.ByteLevel()
    trainer = tokenizers.trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOT],
        initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator([text], trainer)
    return tok


def randomize(model: torch.nn.Module, seed: int = 0) -> None:
    """Random values everywhere (biases and LayerNorms too), so that no mapping error hides."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.2)


def gpt2_folder(
    folder: Path,
    text: str,
    *,
    tie: bool = True,
    n_positions: int = 64,
    legacy: bool = False,
    shards: bool = False,
) -> Path:
    """save_pretrained of a random tiny GPT2LMHeadModel and its byte-level BPE tokenizer.

    ``legacy``: weights named as the original gpt2 files are (no ``transformer.`` prefix,
    causal-mask buffers included). ``shards``: several safetensors files and their index.
    """
    tok = byte_level_bpe(text)
    config = transformers.GPT2Config(
        vocab_size=tok.get_vocab_size(),
        n_positions=n_positions,
        n_embd=32,
        n_layer=2,
        n_head=2,
        tie_word_embeddings=tie,
        bos_token_id=tok.token_to_id(EOT),
        eos_token_id=tok.token_to_id(EOT),
    )
    model = transformers.GPT2LMHeadModel(config)
    randomize(model)
    model.save_pretrained(folder, max_shard_size="40KB" if shards else "5GB")
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=EOT, eos_token=EOT)
    fast.save_pretrained(folder)
    if legacy:
        from safetensors.torch import save_file

        state = {k.removeprefix("transformer."): v for k, v in model.state_dict().items()}
        if tie:
            state.pop("lm_head.weight")
        mask = torch.tril(torch.ones(n_positions, n_positions)).view(1, 1, n_positions, n_positions)
        for i in range(config.n_layer):
            state[f"h.{i}.attn.bias"] = mask.clone()
        save_file(
            {k: v.contiguous() for k, v in state.items()},
            folder / "model.safetensors",
            metadata={"format": "pt"},
        )
    return folder


def hf_model(folder: Path):
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, local_files_only=True)
    return model.to(torch.float32).eval()


def random_ids(vocab_size: int, length: int, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, vocab_size, (2, length), generator=torch.Generator().manual_seed(seed))
