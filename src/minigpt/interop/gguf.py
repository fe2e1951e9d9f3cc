"""``minigpt export --format gguf``: one file for llama.cpp, Ollama and LM Studio.

Written with the ``gguf`` package, the writer llama.cpp's own converters use, for the three
llama.cpp architectures that compute a minigpt model exactly:

- ``gpt2``: the classic model (learned positions, LayerNorm, GPT-2's tanh GELU); zero biases
  where minigpt has none, weights as ``nn.Linear`` stores them (llama.cpp's converter
  transposes GPT-2's Conv1D weights back to that). llama.cpp's gpt2 computes the tanh GELU
  only, so a model with the exact GELU (``mlp="gelu_exact"``) is refused rather than run with
  another activation than it was trained with;
- ``llama``: rotary + RMSNorm + SwiGLU. llama.cpp rotates *interleaved* pairs for this
  architecture, minigpt (and transformers) the two halves of each head: the rows of the
  query and key projections are permuted as llama.cpp's converter does, which makes the two
  rotations the same function;
- ``qwen3``: the same plus QK-norm; llama.cpp rotates halves (NEOX) here: no permutation.

Tensor names come from the HF names through ``gguf``'s own ``TensorNameMap``. The tokenizer
goes inside (``gguf_vocab``), with the chat template when there is one. ``--quant``: f32,
f16 (matrices in half precision, norms and biases in f32) or q8_0 (matrices whose rows are
a multiple of 32 in 8-bit blocks, others f16).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from minigpt.checkpoint import model_state
from minigpt.config import ModelConfig, swiglu_hidden
from minigpt.data.chat_template import END_OF_TURN
from minigpt.errors import MiniGPTError
from minigpt.interop.formats import QUANTS
from minigpt.interop.gguf_vocab import PRE_TOKENIZER, gguf_vocab
from minigpt.interop.hf_base import HFArchitecture, Tensors
from minigpt.interop.hf_gpt2 import CONV1D_WEIGHTS, GPT2
from minigpt.interop.hf_import import closest_architecture
from minigpt.interop.hf_llama import LLAMA, QWEN3, RMS_EPS
from minigpt.interop.loader import open_model
from minigpt.interop.ollama import MODELFILE, modelfile

# Llama without biases only: transformers' GGUF reader (5.x) builds a LlamaConfig without
# attention_bias and drops bias tensors, so a file with them could not be checked.
LLAMA_NO_BIAS = replace(LLAMA, fixed={**LLAMA.fixed, "bias": False}, free=LLAMA.free - {"bias"})
# llama.cpp's gpt2 graph applies ggml_gelu, the tanh approximation: GPT-2's GELU only.
GPT2_TANH_GELU = replace(GPT2, choices={})
GGUF_ARCHITECTURES = {a.model_type: a for a in (GPT2_TANH_GELU, LLAMA_NO_BIAS, QWEN3)}
KEEP_F32 = ("position_embd.weight",)  # looked up by row, as llama.cpp's converter keeps it


@dataclass
class GGUFResult:
    path: Path
    checkpoint: Path
    iteration: int
    architecture: str
    quant: str
    size: int
    files: list[Path]
    notes: list[str] = field(default_factory=list)


def import_gguf() -> Any:
    try:
        import gguf
    except ImportError:
        raise MiniGPTError(
            "GGUF export needs the gguf package; pip install 'minigpt[gguf]'"
        ) from None
    return gguf


def gguf_architecture(config: ModelConfig) -> HFArchitecture:
    """gpt2, llama or qwen3: the llama.cpp architecture that computes ``config`` exactly."""
    for arch in GGUF_ARCHITECTURES.values():
        if not arch.blockers(config):
            return arch
    if config.mlp == "gelu_exact" and not GPT2.blockers(config):
        raise MiniGPTError(
            "GGUF cannot hold this model: it uses the exact GELU (mlp=gelu_exact) and "
            "llama.cpp's gpt2 computes only GPT-2's tanh approximation; export it with "
            "--format hf, or train with --mlp gelu"
        )
    closest = closest_architecture(config, tuple(GGUF_ARCHITECTURES.values()))
    raise MiniGPTError(
        f"GGUF has no llama.cpp architecture for this model: the closest, {closest.name}, "
        f"cannot express its {', '.join(closest.blockers(config))}; export it with --format hf "
        "(transformers remote code), or train with the options of gpt2, llama or qwen3"
    )


def permute_rotary(w: torch.Tensor, n_head: int) -> torch.Tensor:
    """Rows of a query/key projection reordered from half-split to interleaved rotary pairs
    (llama.cpp's ``LlamaModel.permute``)."""
    return (
        w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
        .swapaxes(1, 2)
        .reshape(w.shape)
    )


def gguf_tensors(state: Tensors, config: ModelConfig, arch: HFArchitecture, gguf: Any) -> Tensors:
    """minigpt weights -> GGUF tensor names and layouts for ``arch``."""
    hf = arch.to_hf(state, config)
    by_name = {name: key for key, name in gguf.MODEL_ARCH_NAMES.items()}
    names = gguf.get_tensor_name_map(by_name[arch.model_type], config.n_layer)
    out: Tensors = {}
    for name, tensor in hf.items():
        if arch is GPT2_TANH_GELU and name.endswith(CONV1D_WEIGHTS):
            tensor = tensor.t()  # back to nn.Linear's (out, in)
        if arch is LLAMA_NO_BIAS and (".q_proj." in name or ".k_proj." in name):
            tensor = permute_rotary(tensor, config.n_head)
        new = names.get_name(name, try_suffixes=(".weight", ".bias"))
        if new is None:
            raise MiniGPTError(f"no GGUF name for {name}; please report it")
        out[new] = tensor.to(torch.float32).contiguous()
    return out


def write_metadata(writer: Any, config: ModelConfig, arch: HFArchitecture, gguf: Any) -> None:
    head = config.n_embd // config.n_head
    writer.add_context_length(config.block_size)
    writer.add_embedding_length(config.n_embd)
    writer.add_block_count(config.n_layer)
    writer.add_head_count(config.n_head)
    if arch is GPT2_TANH_GELU:
        writer.add_feed_forward_length(4 * config.n_embd)
        writer.add_layer_norm_eps(1e-5)
        return
    writer.add_feed_forward_length(swiglu_hidden(config.n_embd))
    writer.add_head_count_kv(config.n_head)
    writer.add_key_length(head)
    writer.add_value_length(head)
    writer.add_rope_dimension_count(head)
    writer.add_rope_freq_base(config.rope_base)
    writer.add_layer_norm_rms_eps(RMS_EPS)
    writer.add_vocab_size(config.vocab_size)


def write_tensor(writer: Any, name: str, tensor: torch.Tensor, quant: str, gguf: Any) -> None:
    data = tensor.numpy()
    q = gguf.GGMLQuantizationType
    if data.ndim < 2 or quant == "f32" or name in KEEP_F32:
        writer.add_tensor(name, data.astype(np.float32), raw_dtype=q.F32)
    elif quant == "q8_0" and data.shape[-1] % 32 == 0:
        writer.add_tensor(name, gguf.quants.quantize(data, q.Q8_0), raw_dtype=q.Q8_0)
    else:
        writer.add_tensor(name, data.astype(np.float16), raw_dtype=q.F16)


def export_gguf(
    source: str | Path,
    out: str | Path,
    *,
    quant: str = "f32",
    force: bool = False,
    best: bool = False,
    ollama: bool = False,
) -> GGUFResult:
    """Write the newest good checkpoint of ``source`` (or its best) as one GGUF file, and
    with ``ollama`` an Ollama ``Modelfile`` beside it."""
    if quant not in QUANTS:
        raise MiniGPTError(f"--quant must be one of {', '.join(QUANTS)}, got {quant!r}")
    gguf = import_gguf()
    out = Path(out)
    if out.suffix != ".gguf":
        raise MiniGPTError(f"--out names the GGUF file to write (model.gguf), not {out}")
    modelfile_path = out.with_name(MODELFILE)
    for path in (out, *([modelfile_path] if ollama else [])):
        if path.exists() and not force:
            raise MiniGPTError(f"{path} already exists; choose another --out or pass --force")
    loaded = open_model(source, "cpu", best=best, hf=False)
    ckpt, config, tokenizer = loaded.checkpoint, loaded.config, loaded.tokenizer
    assert ckpt is not None and config is not None  # hf=False: always a minigpt checkpoint
    m = config.model
    arch = gguf_architecture(m)
    vocab = gguf_vocab(tokenizer, m.vocab_size)
    tensors = gguf_tensors(model_state(loaded.model), m, arch, gguf)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    writer = gguf.GGUFWriter(tmp, arch.model_type)
    try:
        writer.add_name(out.stem)
        file_type = {"f32": "ALL_F32", "f16": "MOSTLY_F16", "q8_0": "MOSTLY_Q8_0"}[quant]
        writer.add_file_type(int(getattr(gguf.LlamaFileType, file_type)))
        writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
        write_metadata(writer, m, arch, gguf)
        writer.add_tokenizer_model("gpt2")
        writer.add_tokenizer_pre(PRE_TOKENIZER)
        writer.add_token_list(vocab.tokens)
        writer.add_token_types(vocab.types)
        writer.add_token_merges(vocab.merges)
        if vocab.eot_id is not None:
            writer.add_bos_token_id(vocab.eot_id)
            writer.add_eos_token_id(vocab.eot_id)
            writer.add_pad_token_id(vocab.eot_id)
        writer.add_add_bos_token(False)  # minigpt never prepends a token to a prompt
        writer.add_add_eos_token(False)
        if tokenizer.chat_template is not None:
            writer.add_chat_template(tokenizer.chat_template)
            if END_OF_TURN in tokenizer.special_tokens:  # a reply ends there (llama.cpp: EOG)
                writer.add_eot_token_id(tokenizer.special_tokens[END_OF_TURN])
        for name, tensor in tensors.items():
            write_tensor(writer, name, tensor, quant, gguf)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(tmp, out)
    finally:
        writer.close()
        tmp.unlink(missing_ok=True)
    files = [out]
    if ollama:
        text = modelfile(out, tokenizer, m.block_size)
        modelfile_path.write_text(text, encoding="utf-8")
        files.append(modelfile_path)
    notes = [f"llama.cpp architecture {arch.model_type}, weights {quant}"]
    if tokenizer.eot_id is None:
        notes.append("no end-of-text token: generation stops at the token limit")
    size = out.stat().st_size
    return GGUFResult(out, ckpt.path, ckpt.iteration, arch.model_type, quant, size, files, notes)
