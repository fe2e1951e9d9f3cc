"""``minigpt export``: a run or checkpoint as a Hugging Face model folder.

The folder loads with ``AutoModelForCausalLM.from_pretrained(DIR)`` and
``AutoTokenizer.from_pretrained(DIR)``, offline, and holds:

- ``config.json``: a ``GPT2LMHeadModel`` (the mapping lives in ``hf.py``);
- ``model.safetensors``: the weights, in float32 unless asked otherwise;
- ``tokenizer.json`` + ``tokenizer_config.json``: a fast tokenizer that encodes as minigpt's;
- ``generation_config.json``: ``minigpt sample``'s sampling defaults;
- ``README.md``: a model card with the architecture and the training summary.

It is written to a temporary folder and renamed at the end. Where transformers is installed,
the export is then checked: transformers' logits on random tokens must equal minigpt's, the
weights must import back exactly, and the tokenizers must give the same ids.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w
import torch
from safetensors.torch import save_file

from minigpt._version import __version__
from minigpt.checkpoint import Checkpoint, model_state
from minigpt.config import RunConfig, TrainConfig
from minigpt.config.sampling import SampleConfig
from minigpt.data.chat_template import reply_stop_ids
from minigpt.data.hf_tokenizer import (
    HF_CONFIG_FILE,
    HF_TOKENIZER_CONFIG,
    import_transformers,
    tokenizer_config,
    tokenizer_json,
)
from minigpt.data.meta import check_output_folder
from minigpt.data.tokenizer import TOKENIZER_FILE, CharTokenizer, Tokenizer
from minigpt.errors import MiniGPTError
from minigpt.interop.hf_import import (
    HF_WEIGHTS_FILE,
    hf_architecture,
    load_hf,
    to_hf_tensors,
)
from minigpt.interop.loader import open_model
from minigpt.model import GPT

FORMATS = ("hf",)
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
GENERATION_CONFIG = "generation_config.json"
MODEL_CARD = "README.md"
LOGITS_TOLERANCE = 1e-4
# Tokenizer check text for tokenizers that cover any text (BPE); a char tokenizer uses its chars.
CHECK_TEXT = "Hello, world! Salam, dünya: ə ı İ ş ğ. Привет, мир. 你好 😀\n\tThe end."


@dataclass
class ExportResult:
    folder: Path
    checkpoint: Path
    iteration: int
    files: list[str]
    notes: list[str] = field(default_factory=list)
    max_logit_diff: float | None = None  # None: transformers not installed, or not checked


def export_hf(
    source: str | Path,
    out: str | Path,
    *,
    dtype: str = "float32",
    force: bool = False,
    check: bool = True,
    best: bool = False,
) -> ExportResult:
    """Write the newest good checkpoint of ``source`` (``best``: the one with the lowest val
    loss), or the checkpoint ``source`` names, to ``out``."""
    if dtype not in DTYPES:
        raise MiniGPTError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    out = Path(out)
    loaded = open_model(source, "cpu", best=best, hf=False)
    ckpt, config, tokenizer = loaded.checkpoint, loaded.config, loaded.tokenizer
    assert ckpt is not None and config is not None  # hf=False: always a minigpt checkpoint
    weights = model_state(loaded.model)
    architecture = hf_architecture(config.model)
    tensors = to_hf_tensors(weights, config.model)
    tensors = {k: v.to(DTYPES[dtype]).contiguous() for k, v in tensors.items()}
    eot = tokenizer.eot_id
    files = {
        HF_CONFIG_FILE: {
            **architecture,
            "bos_token_id": eot,
            "eos_token_id": eot,
            "torch_dtype": dtype,
        },
        GENERATION_CONFIG: generation_config(tokenizer, config.model.block_size),
        TOKENIZER_FILE: tokenizer_json(tokenizer),
        HF_TOKENIZER_CONFIG: tokenizer_config(tokenizer, config.model.block_size),
    }
    notes = export_notes(config, tokenizer)
    check_output_folder(out, force)
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        save_file(tensors, tmp / HF_WEIGHTS_FILE, metadata={"format": "pt"})
        for name, content in files.items():
            text = json.dumps(content, indent=2, ensure_ascii=False) + "\n"
            (tmp / name).write_text(text, encoding="utf-8")
        card = model_card(ckpt, config, tokenizer, dtype, notes, out)
        (tmp / MODEL_CARD).write_text(card, encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result = ExportResult(
        out, ckpt.path, ckpt.iteration, sorted([HF_WEIGHTS_FILE, MODEL_CARD, *files]), notes
    )
    if check and transformers_available():
        exact = weights if dtype == "float32" else None
        result.max_logit_diff = check_hf_folder(out, tokenizer, exact)
    return result


def transformers_available() -> bool:
    try:
        import_transformers("checking the export")
    except MiniGPTError:
        return False
    return True


def generation_config(tokenizer: Tokenizer, block_size: int) -> dict[str, Any]:
    """Sample as ``minigpt sample`` does; stop at the context length, past which GPT-2's
    learned position embeddings have no rows."""
    defaults = SampleConfig()
    config: dict[str, Any] = {
        "do_sample": True,
        "temperature": defaults.temperature,
        "top_k": defaults.top_k,
        "max_length": block_size,
    }
    if tokenizer.eot_id is not None:
        config.update(
            bos_token_id=tokenizer.eot_id,
            eos_token_id=tokenizer.eot_id,
            pad_token_id=tokenizer.eot_id,
        )
    if tokenizer.chat_template is not None:  # a chat-tuned model also stops at end of turn
        config["eos_token_id"] = reply_stop_ids(tokenizer)
    return config


def export_notes(config: RunConfig, tokenizer: Tokenizer) -> list[str]:
    """What a user of the exported model should know that config.json does not say."""
    m = config.model
    notes = []
    if not m.bias:
        notes.append(
            "trained without biases; GPT-2 always has them, so they are exported as zeros "
            "(the same function); `minigpt` drops them again on import"
        )
    if isinstance(tokenizer, CharTokenizer):
        unknown = (
            "become `<unk>` (the literal text `<unk>` is read as that token too)"
            if tokenizer.unk_id is not None
            else "are dropped by the transformers tokenizer (minigpt refuses them)"
        )
        notes.append(f"one token per character; characters outside the vocabulary {unknown}")
    if tokenizer.eot_id is None:
        notes.append("no end-of-text token: generation stops at max_new_tokens or max_length")
    notes.append(
        f"learned position embeddings: prompt plus generated tokens must fit in "
        f"{m.block_size} tokens (n_positions)"
    )
    return notes


def check_hf_folder(
    folder: str | Path,
    tokenizer: Tokenizer | None = None,
    exact: dict[str, torch.Tensor] | None = None,
    seed: int = 0,
) -> float:
    """Check a GPT-2 folder with transformers; return the largest logit difference.

    transformers' model and minigpt's import of the same folder get the same random tokens
    and must give the same fp32 logits (within 1e-4). ``exact``: weights the import must
    reproduce bit for bit. ``tokenizer``: must encode like the folder's transformers tokenizer.
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
    theirs = transformers.AutoModelForCausalLM.from_pretrained(folder, local_files_only=True)
    theirs = theirs.to(torch.float32).eval()
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, hf.config.vocab_size, (2, min(hf.config.block_size, 64)), generator=gen)
    with torch.no_grad():
        diff = (ours(ids)[0] - theirs(input_ids=ids).logits).abs().max().item()
    if not diff <= LOGITS_TOLERANCE:
        raise MiniGPTError(
            f"transformers' logits differ from minigpt's by {diff:.2e} (over {LOGITS_TOLERANCE})"
            f" for {folder}; the export is wrong, please report it"
        )
    if tokenizer is not None:
        check_tokenizer(folder, tokenizer, transformers)
    return diff


def check_tokenizer(folder: Path, tokenizer: Tokenizer, transformers: Any) -> None:
    """transformers' AutoTokenizer must give minigpt's ids and text back."""
    theirs = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
    text = "".join(tokenizer.chars) if isinstance(tokenizer, CharTokenizer) else CHECK_TEXT
    ids = tokenizer.encode(text)
    if theirs.encode(text, add_special_tokens=False) != ids or theirs.decode(ids) != text:
        raise MiniGPTError(
            f"transformers' tokenizer for {folder} does not encode like minigpt's; "
            "the export is wrong, please report it"
        )


def optimiser_summary(t: TrainConfig) -> str:
    """The optimizer and schedule as the run used them."""
    schedule = f"{t.schedule} schedule, warm-up {t.warmup_iters}"
    if t.optimizer == "muon":
        return (
            f"Muon (lr {t.muon_lr:g}) on the hidden matrices, AdamW (lr {t.lr:g}) on the rest, "
            f"{schedule}"
        )
    return f"AdamW, lr {t.lr:g}, {schedule}, weight decay {t.weight_decay:g}"


def model_card(
    ckpt: Checkpoint,
    config: RunConfig,
    tokenizer: Tokenizer,
    dtype: str,
    notes: list[str],
    folder: Path,
) -> str:
    """README.md: what the model is, how it was trained, how to use it."""
    m, t = config.model, config.train
    state = ckpt.state
    with torch.device("meta"):
        n_params = GPT(m).num_params()
    tokens = ckpt.iteration * t.batch_size * t.grad_accum * m.block_size
    best = state.get("best_val_loss")
    best_text = (
        f"{best:.4f} (perplexity {math.exp(best):.2f})"
        if isinstance(best, (int, float)) and math.isfinite(best)
        else "not evaluated"
    )
    last = (state.get("history") or [{}])[-1]
    last_text = (
        f"train {last['train']:.4f}, val {last['val']:.4f} at iteration {last['iter']}"
        if {"train", "val", "iter"} <= set(last)
        else "none"
    )
    vocab = f"{m.vocab_size:,} ({tokenizer.kind} tokenizer with {tokenizer.vocab_size:,} tokens)"
    rows = [
        ("parameters", f"{n_params:,}"),
        ("layers / heads / width", f"{m.n_layer} / {m.n_head} / {m.n_embd}"),
        ("context (n_positions)", f"{m.block_size}"),
        ("vocabulary", vocab),
        ("biases", "yes" if m.bias else "none (exported as zeros)"),
        ("output head", "tied to the token embedding" if m.tie_embeddings else "separate"),
        ("weights", dtype),
    ]
    training = [
        ("iterations", f"{ckpt.iteration:,}"),
        ("tokens seen", f"{tokens:,}"),
        ("best val loss", best_text),
        ("last evaluation", last_text),
        ("dataset", f"`{t.data}`" if t.data else "unknown"),
        ("started from", f"`{state['init_from']}`" if state.get("init_from") else "scratch"),
        ("optimiser", optimiser_summary(t)),
        ("batch", f"{t.batch_size} x {t.grad_accum} x {m.block_size} tokens"),
        ("minigpt", state.get("minigpt_version", __version__)),
    ]
    eot = tokenizer.eot_id
    prompt = '"Once upon a time"'
    name, path = folder.name, folder.as_posix()
    return "\n".join(
        [
            "---",
            "library_name: transformers",
            "pipeline_tag: text-generation",
            "tags: [minigpt, gpt2, text-generation]",
            "---",
            "",
            f"# {name}",
            "",
            "A GPT-2-architecture language model trained with minigpt, exported from "
            f"`{ckpt.path}` (iteration {ckpt.iteration}).",
            "",
            "## Use",
            "",
            "```python",
            "from transformers import AutoModelForCausalLM, AutoTokenizer",
            "",
            f'tokenizer = AutoTokenizer.from_pretrained("{path}")',
            f'model = AutoModelForCausalLM.from_pretrained("{path}")',
            f"ids = tokenizer({prompt}, return_tensors='pt').input_ids",
            "out = model.generate(ids, max_new_tokens=100)  # sampling settings: generation_config.json",
            "print(tokenizer.decode(out[0]))",
            "```",
            "",
            f"or `minigpt sample {path}`, or fine-tune it: `minigpt train --init-from hf:{path} ...`.",
            "",
            "## Model",
            "",
            *_table(rows),
            "",
            "## Training",
            "",
            *_table(training),
            "",
            "## Notes",
            "",
            *[f"- {note}" for note in notes],
            *([f"- end-of-text token id: {eot}"] if eot is not None else []),
            "",
            "## Full minigpt config",
            "",
            "```toml",
            tomli_w.dumps(config.to_dict()).strip(),
            "```",
            "",
        ]
    )


def _table(rows: list[tuple[str, str]]) -> list[str]:
    return ["| | |", "| --- | --- |", *[f"| {k} | {v} |" for k, v in rows]]
