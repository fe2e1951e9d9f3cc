"""Checking an exported Hugging Face folder with transformers itself.

An export is right when an independent reader computes what minigpt computes: transformers'
model (the exact class, or the remote code) and minigpt's import of the same folder get the
same random tokens and must give the same fp32 logits (within 1e-4), and greedy
``generate()`` with transformers' KV cache must pick minigpt's tokens. The weights must
import back bit for bit, and the tokenizer must give minigpt's ids.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from minigpt.data.hf_tokenizer import import_transformers
from minigpt.data.tokenizer import CharTokenizer, Tokenizer
from minigpt.errors import MiniGPTError
from minigpt.extras import too_old
from minigpt.interop.hf_import import BY_MODEL_TYPE, load_hf, read_hf_config

LOGITS_TOLERANCE = 1e-4
GREEDY_TOKENS = 16  # tokens generated greedily by both, which must agree
# Tokenizer check text for tokenizers that cover any text (BPE); a char tokenizer uses its chars.
CHECK_TEXT = "Hello, world! Salam, dünya: ə ı İ ş ğ ç ö ü. Привет, мир. 你好 😀\n\tThe end."


# The first transformers with every class an export may name: ArceeForCausalLM came in 4.53
# (Qwen3ForCausalLM in 4.51); pyproject's hf extra declares the same floor.
TRANSFORMERS_FLOOR = (4, 53)


def transformers_too_old() -> str | None:
    """One line when the installed transformers cannot load every class minigpt exports to."""
    return too_old("transformers", TRANSFORMERS_FLOOR, "checking the export")


def transformers_available() -> bool:
    try:
        import_transformers("checking the export")
    except MiniGPTError:
        return False
    return True


def needs_remote_code(folder: str | Path) -> bool:
    """True for a folder whose config.json names minigpt's own model (remote code): the only
    case where minigpt passes trust_remote_code=True, for code it wrote itself."""
    arch = BY_MODEL_TYPE.get(read_hf_config(Path(folder)).get("model_type"))
    return bool(arch and arch.remote_code)


def load_transformers_model(folder: str | Path) -> Any:
    """transformers' model for ``folder`` (fp32, eval)."""
    transformers = import_transformers("loading a Hugging Face folder")
    model = transformers.AutoModelForCausalLM.from_pretrained(
        folder, local_files_only=True, trust_remote_code=needs_remote_code(folder)
    )
    return model.to(torch.float32).eval()


def check_hf_folder(
    folder: str | Path,
    tokenizer: Tokenizer | None = None,
    exact: dict[str, torch.Tensor] | None = None,
    seed: int = 0,
) -> float:
    """Check a folder with transformers; return the largest logit difference.

    ``exact``: weights the import must reproduce bit for bit. ``tokenizer``: must encode like
    the folder's transformers tokenizer.
    """
    transformers = import_transformers("checking a Hugging Face folder")
    with quiet(transformers):
        return _check_hf_folder(transformers, Path(folder), tokenizer, exact, seed)


@contextmanager
def quiet(transformers: Any) -> Iterator[None]:
    """No progress bars or warnings (e.g. 'sequence longer than model_max_length') meant for
    interactive users of transformers while minigpt checks an export."""
    logging = transformers.utils.logging
    verbosity, bars = logging.get_verbosity(), logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.set_verbosity(verbosity)
        if bars:
            logging.enable_progress_bar()


def greedy_hf(model: Any, ids: torch.Tensor, new_tokens: int) -> torch.Tensor:
    """transformers' greedy generate (with its KV cache), new tokens only. It stops early at
    the end-of-text token, where minigpt goes on: compare what both generated."""
    out = model.generate(
        ids,
        attention_mask=torch.ones_like(ids),
        max_new_tokens=new_tokens,
        max_length=None,
        do_sample=False,
        use_cache=True,
        pad_token_id=0,
    )
    return out[:, ids.size(1) :]


def _check_hf_folder(
    transformers: Any,
    folder: Path,
    tokenizer: Tokenizer | None,
    exact: dict[str, torch.Tensor] | None,
    seed: int,
) -> float:
    hf = load_hf(folder)
    if exact is not None:
        differ = [k for k, v in exact.items() if not torch.equal(hf.tensors.get(k), v)]
        if differ:
            raise MiniGPTError(f"exported weights do not import back exactly ({differ[0]})")
    ours = hf.build()
    theirs = load_transformers_model(folder)
    gen = torch.Generator().manual_seed(seed)
    length = min(hf.config.block_size, 64)
    ids = torch.randint(0, hf.config.vocab_size, (2, length), generator=gen)
    with torch.no_grad():
        diff = (ours(ids)[0] - theirs(input_ids=ids).logits).abs().max().item()
    if not diff <= LOGITS_TOLERANCE:
        raise MiniGPTError(
            f"transformers' logits differ from minigpt's by {diff:.2e} (over {LOGITS_TOLERANCE})"
            f" for {folder}; the export is wrong, please report it"
        )
    prompt = ids[:1, : max(1, min(8, hf.config.block_size - GREEDY_TOKENS))]
    steps = min(GREEDY_TOKENS, hf.config.block_size - prompt.size(1))
    with torch.no_grad():
        mine = ours.generate(prompt, steps, temperature=0.0)[:, prompt.size(1) :]
        hf_tokens = greedy_hf(theirs, prompt, steps)
        if not torch.equal(hf_tokens, mine[:, : hf_tokens.size(1)]):
            raise MiniGPTError(
                f"transformers' greedy generate() differs from minigpt's for {folder}; "
                "the export is wrong, please report it"
            )
    if tokenizer is not None:
        check_tokenizer(folder, tokenizer, transformers)
    return diff


def check_tokenizer(folder: Path, tokenizer: Tokenizer, transformers: Any) -> None:
    """transformers' AutoTokenizer must give minigpt's ids and text back."""
    theirs = transformers.AutoTokenizer.from_pretrained(
        folder, local_files_only=True, trust_remote_code=needs_remote_code(folder)
    )
    text = "".join(tokenizer.chars) if isinstance(tokenizer, CharTokenizer) else CHECK_TEXT
    ids = tokenizer.encode(text)
    if theirs.encode(text, add_special_tokens=False) != ids or theirs.decode(ids) != text:
        raise MiniGPTError(
            f"transformers' tokenizer for {folder} does not encode like minigpt's; "
            "the export is wrong, please report it"
        )
