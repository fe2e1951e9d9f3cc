"""``minigpt eval``: a model's loss, perplexity and bits per byte over a whole text.

Unlike the training loop's quick estimate (a fixed random subset of windows), this reads every
token once: the text is cut into consecutive windows of ``block_size`` inputs, each predicting
its next ``block_size`` tokens, so every token but the first is predicted exactly once.

- loss: mean nats per predicted token; perplexity = exp(loss);
- bits per byte = total nats / UTF-8 bytes of the text / ln 2. Unlike loss per token it does
  not depend on the tokenizer, so a char model and a BPE model can be compared.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F
from tqdm.auto import tqdm

from minigpt.data.chat_dataset import ChatDataset
from minigpt.data.chat_prepare import is_chat_meta
from minigpt.data.dataset import Dataset
from minigpt.data.meta import META_FILE
from minigpt.data.tokenizer import Tokenizer
from minigpt.errors import MiniGPTError
from minigpt.evaluation.chat_eval import evaluate_chat
from minigpt.evaluation.metrics import EvalResult, bits_per_byte, perplexity  # noqa: F401 (re-exported)
from minigpt.inference.memory import check_eval
from minigpt.interop.loader import open_model
from minigpt.model import GPT
from minigpt.runtime import resolve_device, resolve_dtype


def _windows(n: int, block_size: int) -> list[tuple[int, int]]:
    """(start, length) of consecutive input windows covering targets 1 .. n-1 once."""
    return [(s, min(block_size, n - 1 - s)) for s in range(0, n - 1, block_size)]


@torch.no_grad()
def sum_nats(
    model: GPT,
    tokens: np.ndarray,
    batch_size: int = 8,
    dtype: torch.dtype = torch.float32,
    bar: tqdm | None = None,
) -> tuple[float, int]:
    """Total cross-entropy in nats of every next-token prediction in ``tokens``, and their count."""
    device = next(model.parameters()).device
    block = model.config.block_size
    windows = _windows(len(tokens), block)
    total, count = 0.0, 0
    # Full windows go in batches; the last, shorter window on its own.
    groups: dict[int, list[int]] = {}
    for start, length in windows:
        groups.setdefault(length, []).append(start)
    for length, starts in groups.items():
        for i in range(0, len(starts), batch_size):
            chunk = starts[i : i + batch_size]
            rows = np.stack([tokens[s : s + length + 1].astype(np.int64) for s in chunk])
            rows_t = torch.from_numpy(rows).to(device)
            with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
                logits, _ = model(rows_t[:, :-1])
            nats = F.cross_entropy(
                logits.float().reshape(-1, logits.size(-1)),
                rows_t[:, 1:].reshape(-1),
                reduction="sum",
            )
            total += float(nats)
            count += length * len(chunk)
            if bar is not None:
                bar.update(length * len(chunk))
    return total, count


def _text_tokens(path: Path, tokenizer: Tokenizer) -> tuple[list[np.ndarray], int]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise MiniGPTError(f"{path} is not UTF-8 text ({e}); convert it first") from None
    if not text:
        raise MiniGPTError(f"{path} is empty; give a text to evaluate")
    return [np.asarray(tokenizer.encode_array(text))], len(text.encode("utf-8"))


def open_dataset(folder: Path, split: str, tokenizer: Tokenizer) -> Dataset:
    """The dataset, checked to have ``split`` and to use the model's tokenizer."""
    data = Dataset(folder)
    if split not in data.splits:
        raise MiniGPTError(
            f"{folder} has no split {split!r}; choose from {', '.join(sorted(data.splits))}"
        )
    ours = tokenizer.fingerprint()
    theirs = data.meta.tokenizer.get("fingerprint")
    if theirs and theirs != ours:
        raise MiniGPTError(
            f"the dataset {folder} uses a different tokenizer than the checkpoint; evaluate a "
            "text file instead, or a dataset prepared with the checkpoint's tokenizer"
        )
    return data


def evaluate_tokens(
    model: GPT,
    shards: list[np.ndarray],
    nbytes: int,
    batch_size: int = 8,
    dtype: torch.dtype = torch.float32,
    progress: bool = False,
) -> EvalResult:
    """Evaluate ``model`` on every token of ``shards`` (each a separate stream)."""
    total_predictions = sum(max(0, len(s) - 1) for s in shards)
    if total_predictions == 0:
        raise MiniGPTError("the text is too short to evaluate (fewer than 2 tokens)")
    if next(model.parameters()).device.type == "cpu":  # refuse a batch that cannot fit in RAM
        block = model.config.block_size
        windows = sum(-(-max(0, len(s) - 1) // block) for s in shards)
        check_eval(model.config, min(batch_size, windows), dtype != torch.float32)
    was_training = model.training
    model.eval()
    nats, count = 0.0, 0
    with tqdm(
        total=total_predictions, unit="tok", disable=None if progress else True, leave=False
    ) as bar:
        for shard in shards:
            n, c = sum_nats(model, shard, batch_size, dtype, bar)
            nats, count = nats + n, count + c
    model.train(was_training)
    return EvalResult(loss=nats / count, tokens=count, bytes=nbytes, nats=nats)


def evaluate_checkpoint(
    checkpoint: str | Path,
    data: str | Path,
    split: str = "val",
    batch_size: int = 8,
    device: str = "auto",
    dtype: str = "float32",
    progress: bool = False,
    best: bool = False,
    quantize: str = "none",
) -> EvalResult:
    """Evaluate a run, checkpoint or Hugging Face folder on a text file or a dataset's split.

    A chat dataset (``prepare --format chat``) is evaluated on its replies only.
    ``quantize="int8"`` measures the int8 model that ``--quantize int8`` generates with.
    """
    if batch_size <= 0:
        raise MiniGPTError(f"batch size must be positive, got {batch_size}")
    if quantize != "none":
        if dtype not in ("auto", "float32"):
            raise MiniGPTError(f"--quantize {quantize} computes in float32; drop --dtype {dtype}")
        device, dtype = ("cpu" if device == "auto" else device), "float32"
    loaded = open_model(checkpoint, device, best=best, quantize=quantize)
    model, tokenizer = loaded.model, loaded.tokenizer
    torch_device = resolve_device(device)
    path = Path(data)
    torch_dtype = resolve_dtype(dtype, torch_device)
    if path.is_dir() and (path / META_FILE).is_file():
        dataset = open_dataset(path, split, tokenizer)
        if is_chat_meta(dataset.meta):
            return evaluate_chat(model, ChatDataset(dataset), split, batch_size, torch_dtype)
        shards = list(dataset.splits[split].shards)
        nbytes = int(dataset.meta.splits[split].bytes)
    elif path.is_file():
        shards, nbytes = _text_tokens(path, tokenizer)
    else:
        raise MiniGPTError(
            f"{path} is neither a text file nor a prepared dataset folder (with {META_FILE})"
        )
    return evaluate_tokens(model, shards, nbytes, batch_size, torch_dtype, progress)
