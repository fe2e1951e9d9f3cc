"""Reading a GGUF export back with independent readers: transformers' GGUF loader and llama.cpp.

``gguf_logit_diff``: transformers dequantizes the file into its own model class (GPT-2, Llama,
Qwen3) and computes logits on random tokens; the largest difference from minigpt's is the
export's error: rounding only for f32, the cost of f16 or q8_0 otherwise.
``llama_cpp_greedy``: llama.cpp itself (``llama-cpp-python``, optional: it compiles llama.cpp)
continues a prompt greedily; its tokens must be minigpt's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from minigpt.data.hf_tokenizer import import_transformers
from minigpt.errors import MiniGPTError
from minigpt.extras import too_old
from minigpt.model import GPT

F32_TOLERANCE = 1e-4


# transformers' GGUF reader maps qwen3 files from 4.54 on (Llama and GPT-2 earlier); pyproject's
# gguf extra declares the same floor.
GGUF_READER_FLOOR = (4, 54)


def gguf_reader_too_old() -> str | None:
    """One line when the installed transformers cannot read every GGUF minigpt writes."""
    return too_old("transformers", GGUF_READER_FLOOR, "checking a GGUF file")


def gguf_reader_available() -> bool:
    """transformers and the packages its GGUF loader needs (gguf, accelerate)."""
    try:
        import accelerate  # noqa: F401
        import gguf  # noqa: F401
    except ImportError:
        return False
    try:
        import_transformers("reading a GGUF file")
    except MiniGPTError:
        return False
    return True


def reader_gaps(path: Path) -> dict[str, int]:
    """Config values transformers' GGUF reader (5.x) does not map from the file, read from the
    file's own metadata: qwen3's ``attention.key_length`` (else Qwen3Config's default head_dim
    of 128) and gpt2's ``context_length`` (mapped to the obsolete ``n_ctx``, not to
    ``n_positions``, else 1024)."""
    import gguf

    reader = gguf.GGUFReader(path)

    def value(key: str) -> Any:
        field = reader.get_field(key)
        return None if field is None else field.contents()

    arch = value("general.architecture")
    wanted = {"qwen3": ("head_dim", "qwen3.attention.key_length"),
              "gpt2": ("n_positions", "gpt2.context_length")}  # fmt: skip
    if arch not in wanted:
        return {}
    name, key = wanted[arch]
    found = value(key)
    return {} if found is None else {name: int(found)}


def load_gguf_transformers(path: str | Path) -> Any:
    """transformers' model read from the GGUF file (dequantized, fp32, eval)."""
    transformers = import_transformers("reading a GGUF file")
    path = Path(path)
    verbosity = transformers.utils.logging.get_verbosity()
    transformers.utils.logging.set_verbosity_error()
    bars = transformers.utils.logging.is_progress_bar_enabled()
    transformers.utils.logging.disable_progress_bar()
    try:
        model = transformers.AutoModelForCausalLM.from_pretrained(
            path.parent, gguf_file=path.name, local_files_only=True, **reader_gaps(path)
        )
    finally:
        transformers.utils.logging.set_verbosity(verbosity)
        if bars:
            transformers.utils.logging.enable_progress_bar()
    return model.to(torch.float32).eval()


def gguf_logit_diff(path: str | Path, model: GPT, seed: int = 0) -> float:
    """Largest |logit| difference between transformers' reading of ``path`` and ``model``."""
    theirs = load_gguf_transformers(path)
    gen = torch.Generator().manual_seed(seed)
    length = min(model.config.block_size, 64)
    ids = torch.randint(0, model.config.vocab_size, (2, length), generator=gen)
    with torch.no_grad():
        return (model.eval()(ids)[0] - theirs(input_ids=ids).logits).abs().max().item()


def open_llama_cpp(path: str | Path, n_ctx: int, threads: int = 1) -> Any:
    """llama.cpp's model for ``path`` (needs ``pip install llama-cpp-python``)."""
    try:
        from llama_cpp import Llama
    except ImportError:
        raise MiniGPTError("checking with llama.cpp needs pip install llama-cpp-python") from None
    return Llama(model_path=str(path), n_ctx=n_ctx, n_threads=threads, n_batch=n_ctx, verbose=False)


def llama_cpp_greedy(llm: Any, prompt: list[int], new_tokens: int) -> list[int]:
    """llama.cpp's greedy continuation of ``prompt`` (token ids), ``new_tokens`` long: it goes
    on past the end-of-text token, as minigpt does."""
    llm.reset()
    out: list[int] = []
    for token in llm.generate(prompt, top_k=1, top_p=1.0, temp=0.0, repeat_penalty=1.0):
        out.append(int(token))
        if len(out) == new_tokens:
            break
    return out
