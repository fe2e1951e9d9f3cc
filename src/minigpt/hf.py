"""The Hugging Face format: minigpt's GPT <-> transformers' ``GPT2LMHeadModel``, both ways.

The two are the same network with the same parameter names (``transformer.h.0.attn.c_attn``
...). Three things differ, and this module is where they are handled:

- GPT-2 keeps its attention and MLP projections in ``Conv1D`` layers, whose weight is
  (in, out): the transpose of ``nn.Linear``'s (out, in);
- GPT-2 always has biases: a minigpt model with ``bias=False`` is written with zero biases
  (the same function), and ``config.json`` records that, so importing it back drops them;
- GPT-2's ``n_positions`` is minigpt's ``block_size``.

Reading needs only ``safetensors`` and ``json``; writing a char tokenizer needs the
``tokenizers`` library; nothing here needs ``transformers`` except the optional checks in
``export.py``. Nothing is ever downloaded: ``hf:DIR`` is a folder on disk.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from minigpt.checkpoint import CHECKPOINTS_DIR, STATE_FILE, load_model_state
from minigpt.config import ModelConfig
from minigpt.errors import MiniGPTError
from minigpt.model import GPT
from minigpt.tokenizer import TOKENIZER_FILE, CharTokenizer, Tokenizer, load_tokenizer

HF_PREFIX = "hf:"
HF_CONFIG_FILE = "config.json"
HF_WEIGHTS_FILE = "model.safetensors"
HF_WEIGHTS_INDEX = "model.safetensors.index.json"
HF_TOKENIZER_CONFIG = "tokenizer_config.json"
# Written into config.json so that an exported model imports back exactly (transformers keeps
# unknown config keys as plain attributes and otherwise ignores them).
MINIGPT_KEY = "minigpt"

# nn.Linear in minigpt, Conv1D in GPT-2: stored transposed.
CONV1D_WEIGHTS = (
    "attn.c_attn.weight",
    "attn.c_proj.weight",
    "mlp.c_fc.weight",
    "mlp.c_proj.weight",
)
# Causal-mask buffers that old GPT-2 checkpoints store alongside the weights.
MASK_BUFFERS = (".attn.bias", ".attn.masked_bias")
# GPT-2's GELU is the tanh approximation; transformers calls it by these names.
TANH_GELUS = ("gelu_new", "gelu_pytorch_tanh")

# ModelConfig fields that GPT-2's config expresses (see hf_architecture).
GPT2_FIELDS = frozenset(
    {"vocab_size", "block_size", "n_layer", "n_head", "n_embd", "dropout", "bias", "tie_embeddings"}
)
# Fields that change training but not the function the weights compute (e.g. an
# initialisation scheme): exportable at any value. Architecture options stay out of here.
ARCHITECTURE_NEUTRAL: set[str] = {"zero_init_proj"}
# Fields that matter only while another field has a value: exportable otherwise.
ONLY_WITH: dict[str, tuple[str, Any]] = {"rope_base": ("pos", "rope")}


# -- minigpt -> GPT-2 --------------------------------------------------------------------------


def hf_architecture(config: ModelConfig) -> dict[str, Any]:
    """The ``config.json`` of the GPT2LMHeadModel that computes what ``config``'s GPT does.

    Raises MiniGPTError naming every option GPT-2 cannot express: any ModelConfig field beyond
    the classic ones, set away from its default (the classic GPT-2 architecture).
    """
    defaults = type(config)()

    def matters(name: str) -> bool:
        other, value = ONLY_WITH.get(name, (name, getattr(config, name)))
        return name not in GPT2_FIELDS | ARCHITECTURE_NEUTRAL and getattr(config, other) == value

    unsupported = [
        f"{f.name}={getattr(config, f.name)!r}"
        for f in dataclasses.fields(config)
        if matters(f.name) and getattr(config, f.name) != getattr(defaults, f.name)
    ]
    if unsupported:
        raise MiniGPTError(
            f"transformers' GPT-2 cannot express this model's {', '.join(unsupported)}; "
            "only the classic GPT-2 architecture (the defaults of those options) can be exported"
        )
    if config.vocab_size <= 0:
        raise MiniGPTError("the model's vocab_size is not set; export a trained checkpoint")
    return {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "vocab_size": config.vocab_size,
        "n_positions": config.block_size,
        "n_embd": config.n_embd,
        "n_layer": config.n_layer,
        "n_head": config.n_head,
        "n_inner": None,
        "activation_function": "gelu_new",
        "resid_pdrop": config.dropout,
        "embd_pdrop": config.dropout,
        "attn_pdrop": config.dropout,
        "layer_norm_epsilon": 1e-5,
        "initializer_range": 0.02,
        "scale_attn_weights": True,
        "scale_attn_by_inverse_layer_idx": False,
        "reorder_and_upcast_attn": False,
        "add_cross_attention": False,
        "tie_word_embeddings": config.tie_embeddings,
        "use_cache": True,
        MINIGPT_KEY: {"bias": config.bias, "tie_embeddings": config.tie_embeddings},
    }


def to_hf_tensors(state: dict[str, torch.Tensor], config: ModelConfig) -> dict[str, torch.Tensor]:
    """minigpt weights (as in its checkpoints) -> GPT2LMHeadModel weights.

    Conv1D weights are transposed; without biases, zero biases are added, so the exported
    model computes exactly the same logits; a tied head is stored once, as ``wte``.
    """
    out: dict[str, torch.Tensor] = {}
    for name, tensor in state.items():
        if name == "lm_head.weight" and config.tie_embeddings:
            continue
        out[name] = (tensor.t() if name.endswith(CONV1D_WEIGHTS) else tensor).contiguous()
        if not config.bias and name.startswith(("transformer.h.", "transformer.ln_f.")):
            bias = name.removesuffix(".weight") + ".bias"
            out.setdefault(bias, torch.zeros(tensor.shape[0], dtype=tensor.dtype))
    return out


# -- GPT-2 -> minigpt --------------------------------------------------------------------------


def is_hf_ref(path: str | Path | None) -> bool:
    """True for ``hf:DIR``, and for a folder that holds a Hugging Face model (its config.json)."""
    if path is None:
        return False
    if str(path).startswith(HF_PREFIX):
        return True
    folder = Path(path)
    minigpt_folder = (folder / STATE_FILE).is_file() or (folder / CHECKPOINTS_DIR).is_dir()
    return (folder / HF_CONFIG_FILE).is_file() and not minigpt_folder


def hf_folder(ref: str | Path) -> Path:
    """The folder of ``hf:DIR`` (or of DIR), checked to exist: minigpt never downloads."""
    text = str(ref)
    folder = Path(text[len(HF_PREFIX) :] if text.startswith(HF_PREFIX) else text)
    if not folder.is_dir():
        raise MiniGPTError(
            f"{text}: no such folder; minigpt never downloads models: pass a local folder "
            f"(e.g. one saved with save_pretrained, or `hf download gpt2 --local-dir gpt2`)"
        )
    if not (folder / HF_CONFIG_FILE).is_file():
        raise MiniGPTError(
            f"{folder} holds no {HF_CONFIG_FILE}; pass a Hugging Face model folder "
            "(config.json, model.safetensors, tokenizer.json)"
        )
    return folder


def read_hf_config(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / HF_CONFIG_FILE).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise MiniGPTError(f"{folder / HF_CONFIG_FILE} is not valid JSON ({e})") from None


def model_config_from_hf(hf: dict[str, Any], folder: Path | str = "the model") -> ModelConfig:
    """The ModelConfig of a GPT-2 ``config.json``; refuses variants minigpt's GPT cannot run."""
    model_type = hf.get("model_type")
    if model_type != "gpt2":
        raise MiniGPTError(
            f"{folder} is a {model_type!r} model; minigpt imports only the GPT-2 family "
            "(model_type 'gpt2': gpt2, distilgpt2, models exported by minigpt ...)"
        )
    n_embd, n_head = int(hf.get("n_embd", 768)), int(hf.get("n_head", 12))
    checks = [
        (hf.get("activation_function", "gelu_new") in TANH_GELUS, "activation_function"),
        (hf.get("n_inner") in (None, 4 * n_embd), "n_inner"),
        (hf.get("scale_attn_weights", True) is True, "scale_attn_weights"),
        (not hf.get("scale_attn_by_inverse_layer_idx", False), "scale_attn_by_inverse_layer_idx"),
        (not hf.get("add_cross_attention", False), "add_cross_attention"),
        (float(hf.get("layer_norm_epsilon", 1e-5)) == 1e-5, "layer_norm_epsilon"),
        (n_embd % n_head == 0, "n_head"),
    ]
    bad = [f"{key}={hf.get(key)!r}" for ok, key in checks if not ok]
    if bad:
        raise MiniGPTError(
            f"{folder} uses a GPT-2 variant minigpt's model does not compute: {', '.join(bad)}"
        )
    ours = hf.get(MINIGPT_KEY) or {}
    return ModelConfig(
        vocab_size=int(hf.get("vocab_size", 50257)),
        block_size=int(hf.get("n_positions", 1024)),
        n_layer=int(hf.get("n_layer", 12)),
        n_head=n_head,
        n_embd=n_embd,
        dropout=float(hf.get("resid_pdrop", 0.0)),
        bias=bool(ours.get("bias", True)),
        tie_embeddings=bool(hf.get("tie_word_embeddings", True)),
    )


def read_hf_tensors(folder: Path) -> dict[str, torch.Tensor]:
    """All tensors of a folder's ``model.safetensors`` (or its shards). Never a pickle."""
    index = folder / HF_WEIGHTS_INDEX
    if index.is_file():
        weight_map = json.loads(index.read_text(encoding="utf-8")).get("weight_map", {})
        files = sorted(set(weight_map.values()))
    elif (folder / HF_WEIGHTS_FILE).is_file():
        files = [HF_WEIGHTS_FILE]
    elif any(folder.glob("*.bin")):
        raise MiniGPTError(
            f"{folder} holds its weights only as pytorch_model.bin, a pickle, which minigpt never "
            "loads; convert it once with transformers: AutoModelForCausalLM.from_pretrained(DIR)"
            ".save_pretrained(DIR) writes model.safetensors"
        )
    else:
        raise MiniGPTError(f"{folder} holds no {HF_WEIGHTS_FILE}; pass a complete model folder")
    tensors: dict[str, torch.Tensor] = {}
    for name in files:
        try:
            tensors.update(load_file(folder / name))
        except (SafetensorError, OSError) as e:
            raise MiniGPTError(f"{folder / name} is unreadable ({e})") from None
    return tensors


def expected_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Parameter shapes of minigpt's GPT for ``config``, without allocating it (meta device)."""
    with torch.device("meta"):
        model = GPT(config)
    state = model.state_dict()
    if config.tie_embeddings:
        state.pop("lm_head.weight")
    return {k: tuple(v.shape) for k, v in state.items()}


def from_hf_tensors(
    tensors: dict[str, torch.Tensor], config: ModelConfig, folder: Path | str = "the model"
) -> dict[str, torch.Tensor]:
    """GPT-2 weights -> minigpt weights in float32, for ``config`` (whose block_size may be
    smaller than the model's n_positions: the first position embeddings are kept)."""
    out: dict[str, torch.Tensor] = {}
    for name, tensor in tensors.items():
        if name.endswith(MASK_BUFFERS):
            continue
        if not name.startswith(("transformer.", "lm_head.")):
            name = "transformer." + name  # saved from GPT2Model, as the original gpt2 weights are
        if name.endswith(CONV1D_WEIGHTS):
            tensor = tensor.t()
        out[name] = tensor.to(torch.float32).contiguous()
    if config.tie_embeddings:
        out.pop("lm_head.weight", None)
    if not config.bias:
        biases = [k for k in out if k.endswith(".bias")]
        if any(out[k].count_nonzero() for k in biases):
            raise MiniGPTError(
                f"{folder}'s config.json says bias=False, but its biases are not zero; "
                f"remove the {MINIGPT_KEY!r} entry from config.json to import it with biases"
            )
        for k in biases:
            del out[k]
    if "transformer.wpe.weight" in out:
        out["transformer.wpe.weight"] = out["transformer.wpe.weight"][: config.block_size].clone()
    shapes = expected_shapes(config)
    missing = sorted(set(shapes) - set(out))
    unexpected = sorted(set(out) - set(shapes))
    wrong = [k for k in shapes if k in out and tuple(out[k].shape) != shapes[k]]
    if missing or unexpected or wrong:
        detail = (
            f"missing {missing[:3]}"
            if missing
            else f"unexpected {unexpected[:3]}"
            if unexpected
            else f"{wrong[0]} has shape {tuple(out[wrong[0]].shape)}, not {shapes[wrong[0]]}"
        )
        raise MiniGPTError(f"the weights in {folder} do not fit its config.json ({detail})")
    return out


# -- tokenizers ------------------------------------------------------------------------------


def _tokenizers_lib() -> Any:
    try:
        import tokenizers
    except ImportError:
        raise MiniGPTError(
            "the Hugging Face format needs the tokenizers library; pip install 'minigpt[hf]'"
        ) from None
    return tokenizers


def char_tokenizer_json(tok: CharTokenizer) -> dict[str, Any]:
    """A ``tokenizers`` file that encodes and decodes exactly as ``tok`` does.

    A BPE model with no merges splits text into code points and looks each one up; no
    normaliser or pre-tokenizer touches the text; the Fuse decoder joins tokens with nothing
    in between. Unknown characters become ``<unk>`` where the vocabulary has it (and are
    dropped where it does not, as the tokenizers library does).
    """
    lib = _tokenizers_lib()
    vocab = {c: i for i, c in enumerate(tok.chars)}
    unk = tok.UNK if tok.unk_id is not None else None
    if unk is not None:
        vocab[unk] = tok.unk_id
    hf = lib.Tokenizer(lib.models.BPE(vocab=vocab, merges=[], unk_token=unk))
    if unk is not None:
        hf.add_special_tokens([unk])
    hf.decoder = lib.decoders.Fuse()
    return json.loads(hf.to_str())


def char_tokenizer_from_json(data: dict[str, Any]) -> CharTokenizer | None:
    """The CharTokenizer a ``char_tokenizer_json`` file came from; None for other files."""
    model = data.get("model") or {}
    if (
        model.get("type") != "BPE"
        or model.get("merges")
        or data.get("normalizer")
        or data.get("pre_tokenizer")
        or (data.get("decoder") or {}).get("type") != "Fuse"
    ):
        return None
    by_id = {i: s for s, i in model.get("vocab", {}).items()}
    unk = model.get("unk_token")
    chars = [by_id.get(i) for i in range(len(by_id) - (1 if unk else 0))]
    if any(c is None or len(c) != 1 for c in chars):
        return None
    if unk is not None and (unk != CharTokenizer.UNK or by_id.get(len(chars)) != unk):
        return None
    return CharTokenizer(chars, unknown="unk" if unk else "error")


# GPT-2's pre-tokenization pattern, as tiktoken writes it (the original, and the possessive
# form of newer tiktoken versions); the tokenizers library's ByteLevel pre-tokenizer splits
# text the same way.
GPT2_PATTERNS = (
    r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""",
    r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s""",
)


def byte_to_unicode() -> dict[int, str]:
    """GPT-2's printable stand-in character for each byte, as byte-level BPE files use."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    keep += range(ord("®"), ord("ÿ") + 1)
    extra = (b for b in range(256) if b not in keep)
    shifted = {b: chr(256 + i) for i, b in enumerate(extra)}
    return {b: chr(b) if b in keep else shifted[b] for b in range(256)}


def _last_merge(ranks: dict[bytes, int], token: bytes) -> tuple[bytes, bytes]:
    """The two pieces byte-level BPE joins last to build ``token`` (using lower ranks only)."""
    limit, parts = ranks[token], [bytes([b]) for b in token]
    while len(parts) > 2:
        pairs = [
            (ranks.get(parts[i] + parts[i + 1], limit), i)
            for i in range(len(parts) - 1)
            if ranks.get(parts[i] + parts[i + 1], limit) < limit
        ]
        if not pairs:
            break
        _, i = min(pairs)
        parts[i : i + 2] = [parts[i] + parts[i + 1]]
    if len(parts) != 2:
        raise MiniGPTError(f"token {token!r} cannot be built by BPE merges of lower rank")
    return parts[0], parts[1]


def tiktoken_tokenizer_json(enc: Any) -> dict[str, Any]:
    """A tiktoken byte-level BPE encoding (GPT-2's) as a tokenizers-library file.

    The merges are recovered from the ranks (each token's last merge, in rank order) and
    the bytes written with GPT-2's byte-to-character table: what GPT-2's own tokenizer.json
    holds. Only GPT-2's pre-tokenization pattern can be expressed.
    """
    if getattr(enc, "_pat_str", GPT2_PATTERNS[0]) not in GPT2_PATTERNS:
        raise MiniGPTError(
            f"tiktoken encoding {enc.name!r} splits text with another pattern than GPT-2's; "
            "only GPT-2-style encodings can be exported"
        )
    lib = _tokenizers_lib()
    table = byte_to_unicode()
    ranks = {b: enc.encode_single_token(b) for b in enc.token_byte_values()}

    def text(b: bytes) -> str:
        return "".join(table[x] for x in b)

    merges = [
        (text(a), text(b))
        for token, _ in sorted(ranks.items(), key=lambda kv: kv[1])
        if len(token) > 1
        for a, b in [_last_merge(ranks, token)]
    ]
    specials = {name: enc.encode_single_token(name) for name in enc.special_tokens_set}
    vocab = {**{text(b): r for b, r in ranks.items()}, **specials}  # as in GPT-2's file
    hf = lib.Tokenizer(lib.models.BPE(vocab=vocab, merges=merges))
    hf.pre_tokenizer = lib.pre_tokenizers.ByteLevel(add_prefix_space=False)
    hf.decoder = lib.decoders.ByteLevel()
    hf.add_special_tokens(sorted(specials, key=specials.get))
    return json.loads(hf.to_str())


def tokenizer_json(tok: Tokenizer) -> dict[str, Any]:
    """The ``tokenizers``-library JSON of any minigpt tokenizer that has one.

    char: built (``char_tokenizer_json``); BPE kinds stored as tokenizers files: that file;
    kinds that encode with a tiktoken Encoding held as ``.enc`` (GPT-2's): converted.
    """
    if isinstance(tok, CharTokenizer):
        return char_tokenizer_json(tok)
    data = dict(tok.to_json())
    if "model" not in data:
        enc = getattr(tok, "enc", None)
        if hasattr(enc, "token_byte_values"):
            return tiktoken_tokenizer_json(enc)
        raise MiniGPTError(
            f"the {tok.kind!r} tokenizer has no Hugging Face tokenizers form; export supports "
            "char, BPE (tokenizers-library) and GPT-2 (tiktoken) tokenizers"
        )
    data.pop("kind", None)  # minigpt's own tag, if the file carries one
    lib = _tokenizers_lib()
    try:
        lib.Tokenizer.from_str(json.dumps(data))
    except Exception as e:  # the library raises plain Exceptions for bad files
        raise MiniGPTError(f"the tokenizer's JSON is not a valid tokenizers file ({e})") from None
    return data


def tokenizer_config(tok: Tokenizer, block_size: int) -> dict[str, Any]:
    """``tokenizer_config.json``: load as a fast tokenizer that leaves the text alone."""
    config: dict[str, Any] = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": block_size,
        "clean_up_tokenization_spaces": False,
    }
    specials = tok.special_tokens
    eot = next((name for name, i in specials.items() if i == tok.eot_id), None)
    if eot is not None:
        config.update(bos_token=eot, eos_token=eot)
    if CharTokenizer.UNK in specials:
        config["unk_token"] = CharTokenizer.UNK
    return config


def tokenizer_from_hf(folder: Path) -> Tokenizer:
    """A minigpt tokenizer for a Hugging Face folder's tokenizer.

    minigpt's own char export comes back as a CharTokenizer; any other ``tokenizer.json``
    loads as a BPE tokenizer. Without tokenizer.json (only vocab.json and merges.txt), the
    fast tokenizer is built with transformers, when it is installed.
    """
    path = folder / TOKENIZER_FILE
    if not path.is_file():
        return load_tokenizer_via_transformers(folder)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise MiniGPTError(f"{path} is not valid JSON ({e})") from None
    char = char_tokenizer_from_json(data)
    return char if char is not None else load_tokenizer(path)


def load_tokenizer_via_transformers(folder: Path) -> Tokenizer:
    if not any((folder / f).is_file() for f in ("vocab.json", "tokenizer.model")):
        raise MiniGPTError(f"{folder} holds no tokenizer ({TOKENIZER_FILE} or vocab.json)")
    transformers = import_transformers(f"reading the tokenizer in {folder} (no {TOKENIZER_FILE})")
    fast = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
    backend = getattr(fast, "backend_tokenizer", None)
    if backend is None:
        raise MiniGPTError(f"the tokenizer in {folder} has no fast (tokenizers) form")
    with tempfile.TemporaryDirectory() as tmp:  # load_tokenizer reads files
        path = Path(tmp) / TOKENIZER_FILE
        path.write_text(backend.to_str(), encoding="utf-8")
        return load_tokenizer(path)


def import_transformers(why: str) -> Any:
    """``transformers``, offline: never a download, even if a name looks like a hub id."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import transformers
    except ImportError:
        raise MiniGPTError(f"{why} needs transformers; pip install 'minigpt[hf]'") from None
    return transformers


# -- entry points: sample/eval, train --init-from, prepare --tokenizer -------------------------


@dataclass
class HFModel:
    """A GPT-2-family folder read for minigpt: config, float32 weights and tokenizer."""

    folder: Path
    config: ModelConfig
    tensors: dict[str, torch.Tensor]
    tokenizer: Tokenizer


def load_hf(ref: str | Path, block_size: int | None = None) -> HFModel:
    """Read ``hf:DIR`` (or DIR); ``block_size`` below n_positions keeps the first positions."""
    folder = hf_folder(ref)
    config = model_config_from_hf(read_hf_config(folder), folder)
    if block_size is not None:
        config.block_size = min(block_size, config.block_size)
    tensors = from_hf_tensors(read_hf_tensors(folder), config, folder)
    return HFModel(folder, config, tensors, tokenizer_from_hf(folder))


def load_hf_model(ref: str | Path) -> tuple[GPT, Tokenizer]:
    """minigpt's GPT (float32, CPU, eval mode) and tokenizer for a Hugging Face folder."""
    hf = load_hf(ref)
    model = GPT(hf.config)
    load_model_state(model, hf.tensors)
    return model.eval(), hf.tokenizer


def load_hf_tokenizer(ref: str | Path) -> Tokenizer:
    """The tokenizer of ``hf:DIR``, for ``minigpt prepare --tokenizer hf:DIR``."""
    return tokenizer_from_hf(hf_folder(ref))


def adopt_hf_model(
    ref: str | Path,
    config: ModelConfig,
    tokenizer_fingerprint: str | None,
    log: Callable[[str], None] = print,
) -> HFModel:
    """Start a run from ``hf:DIR``: the model's shape replaces ``config``'s.

    Kept from ``config``: dropout, and block_size when it is below the model's n_positions
    (fine-tuning on a shorter context). Every other model option takes its default, the
    classic GPT-2 architecture. The dataset must use the model's tokenizer.
    """
    hf = load_hf(ref, block_size=config.block_size)
    positions = model_config_from_hf(read_hf_config(hf.folder)).block_size
    if tokenizer_fingerprint and hf.tokenizer.fingerprint() != tokenizer_fingerprint:
        raise MiniGPTError(
            f"the dataset was not prepared with the tokenizer of {hf.folder}; prepare it with "
            f"`minigpt prepare YOUR_TEXT --tokenizer hf:{hf.folder} --out DATASET`"
        )
    hf.config.dropout = config.dropout
    c = hf.config
    log(
        f"init from {hf.folder}: {c.n_layer} layers, {c.n_head} heads, {c.n_embd} wide, "
        f"vocab {c.vocab_size}, block_size {c.block_size} (of its {positions} positions), "
        f"biases {'yes' if c.bias else 'no'}, head {'tied' if c.tie_embeddings else 'untied'}"
    )
    return hf
