"""minigpt <-> transformers' GPT2LMHeadModel: weight mapping, import, tokenizers, refusals."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from minigpt.checkpoint import model_state
from minigpt.config import ModelConfig
from minigpt.data.hf_tokenizer import (
    GPT2_PATTERNS,
    byte_to_unicode,
    char_tokenizer_from_json,
    char_tokenizer_json,
    load_hf_tokenizer,
    tokenizer_json,
)
from minigpt.data.tokenizer import CharTokenizer, Tokenizer
from minigpt.errors import MiniGPTError
from minigpt.interop.hf_import import (
    from_hf_tensors,
    hf_architecture,
    load_hf,
    load_hf_model,
    model_config_from_hf,
    to_hf_tensors,
)
from minigpt.model import GPT
from tests.conftest import SMALL_TEXT
from tests.hf_helpers import (
    EOT,
    bpe_kind,
    byte_level_bpe,
    gpt2_folder,
    hf_model,
    random_ids,
    randomize,
    tokenizers,
    transformers,
)

__all__ = ["bpe_kind"]  # a fixture, used by name

SHAPES = [
    pytest.param(True, True, id="bias-tied"),
    pytest.param(False, True, id="nobias-tied"),
    pytest.param(True, False, id="bias-untied"),
    pytest.param(False, False, id="nobias-untied"),
]


def tiny_gpt(bias: bool, tie: bool, seed: int = 0) -> GPT:
    config = ModelConfig(
        vocab_size=37, block_size=24, n_layer=2, n_head=4, n_embd=32, bias=bias, tie_embeddings=tie
    )
    model = GPT(config)
    randomize(model, seed)
    return model.eval()


@pytest.mark.parametrize(("bias", "tie"), SHAPES)
def test_transformers_computes_minigpts_logits(bias, tie):
    ours = tiny_gpt(bias, tie)
    arch = hf_architecture(ours.config)
    theirs = transformers.GPT2LMHeadModel(transformers.GPT2Config(**arch)).eval()
    hf_state = to_hf_tensors(model_state(ours), ours.config)
    missing, unexpected = theirs.load_state_dict(hf_state, strict=False)
    # A tied head is stored once, as wte; nothing else may be left out.
    assert missing == ([] if not tie else ["lm_head.weight"]) and unexpected == []
    assert theirs.transformer.h[0].attn.c_attn.weight.shape == (32, 96)  # Conv1D: (in, out)
    if tie:
        theirs.tie_weights()
    ids = random_ids(37, 24)
    with torch.no_grad():
        diff = (ours(ids)[0] - theirs(input_ids=ids).logits).abs().max().item()
    assert diff < 1e-4


@pytest.mark.parametrize(("bias", "tie"), SHAPES)
def test_weights_round_trip_exactly(bias, tie):
    ours = tiny_gpt(bias, tie, seed=3)
    state = model_state(ours)
    hf_state = to_hf_tensors(state, ours.config)
    if not bias:  # GPT-2 always has biases: zeros stand in for minigpt's absent ones
        assert hf_state["transformer.h.1.mlp.c_fc.bias"].shape == (128,)
        assert not hf_state["transformer.ln_f.bias"].any()
    assert ("lm_head.weight" in hf_state) is not tie
    config = model_config_from_hf(hf_architecture(ours.config))
    assert config == ours.config
    back = from_hf_tensors(hf_state, config)
    assert back.keys() == state.keys()
    assert all(torch.equal(back[k], state[k]) for k in state)


def test_options_gpt2_cannot_express_are_refused_by_name():
    @dataclasses.dataclass
    class Modern(ModelConfig):  # how later model options slot in
        rope: bool = False
        softcap: float = 0.0

    assert hf_architecture(Modern(vocab_size=10))["model_type"] == "gpt2"
    with pytest.raises(MiniGPTError, match=r"rope=True, softcap=30\.0"):
        hf_architecture(Modern(vocab_size=10, rope=True, softcap=30.0))


@pytest.mark.parametrize(
    ("options", "model_type"),
    [
        ({}, "gpt2"),
        ({"bias": False, "tie_embeddings": False}, "gpt2"),
        ({"pos": "rope", "norm": "rmsnorm", "mlp": "swiglu"}, "llama"),
        (
            {"pos": "rope", "norm": "rmsnorm", "mlp": "swiglu", "qk_norm": True, "bias": False},
            "qwen3",
        ),
        ({"pos": "rope", "norm": "rmsnorm", "mlp": "relu2"}, "arcee"),
        ({"pos": "rope", "norm": "rmsnorm", "mlp": "relu2", "qk_norm": True}, "minigpt"),
        ({"pos": "rope", "norm": "rmsnorm", "mlp": "swiglu", "logit_softcap": 30.0}, "minigpt"),
        ({"pos": "rope", "norm": "rmsnorm", "mlp": "swiglu", "qk_norm": True}, "minigpt"),
        ({"norm": "rmsnorm"}, "minigpt"),
        # An initialisation scheme changes training, not the function: any class takes it;
        # rope_base means nothing with learned positions.
        ({"zero_init_proj": True, "rope_base": 500.0}, "gpt2"),
    ],
)
def test_each_model_exports_to_the_class_that_computes_it(options, model_type):
    assert hf_architecture(ModelConfig(vocab_size=10, **options))["model_type"] == model_type


def test_without_remote_code_options_no_class_computes_are_refused_by_name():
    relu2_qk = ModelConfig(vocab_size=10, pos="rope", norm="rmsnorm", mlp="relu2", qk_norm=True)
    with pytest.raises(MiniGPTError, match=r"the closest, Arcee, cannot express its qk_norm=True"):
        hf_architecture(relu2_qk, remote_code=False)
    with pytest.raises(MiniGPTError, match=r"Llama, cannot express its logit_softcap=30\.0"):
        hf_architecture(
            ModelConfig(
                vocab_size=10, pos="rope", norm="rmsnorm", mlp="swiglu", logit_softcap=30.0
            ),
            remote_code=False,
        )


@pytest.mark.parametrize(
    ("tie", "layout"),
    [(True, "save_pretrained"), (False, "save_pretrained"), (True, "legacy"), (False, "shards")],
)
def test_import_a_transformers_model(tmp_path, bpe_kind, tie, layout):
    folder = gpt2_folder(
        tmp_path / "gpt2", SMALL_TEXT, tie=tie, legacy=layout == "legacy", shards=layout == "shards"
    )
    if layout == "shards":
        assert len(list(folder.glob("model-*.safetensors"))) > 1
    ours, tokenizer = load_hf_model(folder)
    assert ours.config.tie_embeddings is tie and ours.config.block_size == 64
    ids = random_ids(ours.config.vocab_size, 64)
    with torch.no_grad():
        diff = (ours(ids)[0] - hf_model(folder)(input_ids=ids).logits).abs().max().item()
    assert diff < 1e-4
    assert tokenizer.decode(tokenizer.encode("To be, or not")) == "To be, or not"
    assert tokenizer.eot_id == tokenizer.special_tokens["<|endoftext|>"]


def test_shorter_block_size_keeps_the_first_positions(tmp_path, bpe_kind):
    folder = gpt2_folder(tmp_path / "gpt2", SMALL_TEXT)
    full, short = load_hf(folder), load_hf(f"hf:{folder}", block_size=16)
    assert short.config.block_size == 16
    wpe = "transformer.wpe.weight"
    assert torch.equal(short.tensors[wpe], full.tensors[wpe][:16])


@pytest.mark.parametrize("unknown", ["error", "unk"])
def test_char_tokenizer_as_tokenizers_file(unknown):
    tok = CharTokenizer.train(["héllo wörld\n\t😀 <>"], unknown=unknown)
    data = char_tokenizer_json(tok)
    lib = tokenizers.Tokenizer.from_str(json.dumps(data))
    text = "wörld 😀\n\théllo  <>"
    assert lib.encode(text).ids == tok.encode(text)
    assert lib.decode(tok.encode(text)) == text
    back = char_tokenizer_from_json(data)
    assert back.fingerprint() == tok.fingerprint()


def test_tokenizers_bpe_file_is_not_mistaken_for_char(tmp_path, bpe_kind):
    folder = gpt2_folder(tmp_path / "gpt2", SMALL_TEXT)
    data = json.loads((folder / "tokenizer.json").read_text())
    assert char_tokenizer_from_json(data) is None


def write_config(folder, **changes):
    folder.mkdir(exist_ok=True)
    config = {
        **hf_architecture(ModelConfig(vocab_size=10, n_layer=1, n_head=2, n_embd=8)),
        **changes,
    }
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.mark.parametrize(
    ("changes", "pattern"),
    [
        ({"model_type": "mamba"}, "is a 'mamba' model; minigpt imports the architectures it"),
        ({"activation_function": "relu"}, "activation_function='relu'"),
        ({"n_inner": 100}, "n_inner=100"),
        ({"scale_attn_by_inverse_layer_idx": True}, "scale_attn_by_inverse_layer_idx=True"),
        ({}, "holds no model.safetensors"),
    ],
)
def test_import_refuses_what_it_cannot_run(tmp_path, changes, pattern):
    folder = write_config(tmp_path / "m", **changes)
    with pytest.raises(MiniGPTError, match=pattern):
        load_hf(folder)


def test_import_refuses_pickles_and_missing_folders(tmp_path):
    folder = write_config(tmp_path / "m")
    (folder / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(MiniGPTError, match="pickle, which minigpt never loads"):
        load_hf(folder)
    with pytest.raises(MiniGPTError, match="no such folder; minigpt never downloads"):
        load_hf("hf:gpt2")


def test_import_refuses_weights_that_do_not_fit(tmp_path, bpe_kind):
    folder = gpt2_folder(tmp_path / "gpt2", SMALL_TEXT)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "n_layer": 3}))
    with pytest.raises(MiniGPTError, match=r"do not fit its config.json \(missing"):
        load_hf(folder)


def test_tokenizer_from_vocab_and_merges_files(tmp_path, bpe_kind):
    """Older GPT-2 folders have vocab.json and merges.txt instead of tokenizer.json."""
    folder = gpt2_folder(tmp_path / "gpt2", SMALL_TEXT)
    original = tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json"))
    original.model.save(str(folder))
    (folder / "tokenizer.json").unlink()
    eot = {"eos_token": "<|endoftext|>", "bos_token": "<|endoftext|>"}
    (folder / "tokenizer_config.json").write_text(
        json.dumps({"tokenizer_class": "GPT2Tokenizer", **eot})
    )
    tok = load_hf_tokenizer(f"hf:{folder}")
    text = "To be, or not to be: ə 😀"
    assert tok.encode(text) == original.encode(text).ids
    assert tok.decode(tok.encode(text)) == text
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) == []


class TiktokenTokenizer(Tokenizer):
    """Encodes through a tiktoken Encoding held as ``.enc``, as the gpt2 kind does."""

    kind = "tiktoken-test"

    def __init__(self, enc) -> None:
        self.enc = enc

    @property
    def vocab_size(self) -> int:
        return self.enc.n_vocab

    def encode(self, text):
        return self.enc.encode_ordinary(text)

    def decode(self, ids):
        return self.enc.decode(list(ids))

    def to_json(self):
        return {"kind": self.kind}

    @classmethod
    def from_json(cls, data):
        raise NotImplementedError


def test_tiktoken_encoding_becomes_gpt2_style_tokenizers_file():
    """GPT-2's tiktoken ranks -> vocab and merges, as GPT-2's own tokenizer.json holds them."""
    tiktoken = pytest.importorskip("tiktoken")
    trained = byte_level_bpe(SMALL_TEXT + " Привет, мир! ə ı 😀", vocab_size=400)
    from_char = {c: b for b, c in byte_to_unicode().items()}
    vocab = trained.get_vocab()
    eot = vocab.pop("<|endoftext|>")
    ranks = {bytes(from_char[c] for c in s): i for s, i in vocab.items()}
    enc = tiktoken.Encoding(
        "test", pat_str=GPT2_PATTERNS[1], mergeable_ranks=ranks, special_tokens={EOT: eot}
    )
    data = tokenizer_json(TiktokenTokenizer(enc))
    assert data["model"]["merges"] == json.loads(trained.to_str())["model"]["merges"]
    converted = tokenizers.Tokenizer.from_str(json.dumps(data))
    for text in (SMALL_TEXT, "Привет, мир!  ə ı\n\n 😀 tab\there", "don't you'll  42 3.14"):
        assert converted.encode(text).ids == enc.encode_ordinary(text)
    assert converted.token_to_id(EOT) == eot
    enc.name = "other"
    enc._pat_str = r"\w+"
    with pytest.raises(MiniGPTError, match="another pattern than GPT-2's"):
        tokenizer_json(TiktokenTokenizer(enc))
