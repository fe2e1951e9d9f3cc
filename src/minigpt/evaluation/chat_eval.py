"""``minigpt eval RUN --data CHAT_DATASET``: how well a model writes the replies.

Every conversation of the split is read once; only reply tokens count (the prompts are given,
not predicted), so the loss, perplexity and bits per byte measure the answers alone. Bits per
byte use the UTF-8 bytes of the replies' text, which the dataset recorded when it was prepared.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from minigpt.data.chat_dataset import IGNORE, ChatDataset, pad_rows
from minigpt.errors import MiniGPTError
from minigpt.evaluation.metrics import EvalResult
from minigpt.inference.memory import check_eval
from minigpt.model import GPT


@torch.no_grad()
def evaluate_chat(
    model: GPT,
    data: ChatDataset,
    split: str = "val",
    batch_size: int = 8,
    dtype: torch.dtype = torch.float32,
) -> EvalResult:
    """Loss over the reply tokens of every conversation of ``split``."""
    if split not in data.splits:
        raise MiniGPTError(f"the chat dataset has no split {split!r}; choose train or val")
    device = next(model.parameters()).device
    block = model.config.block_size
    # Similar lengths together: less padding per batch.
    rows = sorted(data.conversations(split), key=lambda r: len(r[0]))
    if device.type == "cpu":  # refuse a batch that cannot fit in RAM
        check_eval(model.config, max(1, min(batch_size, len(rows))), dtype != torch.float32)
    was_training = model.training
    model.eval()
    nats, count = 0.0, 0
    for i in range(0, len(rows), batch_size):
        x, y = pad_rows(rows[i : i + batch_size], block)
        x, y = x.to(device), y.to(device)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            logits, _ = model(x)
        nats += float(
            F.cross_entropy(
                logits.float().reshape(-1, logits.size(-1)),
                y.reshape(-1),
                ignore_index=IGNORE,
                reduction="sum",
            )
        )
        count += int((y != IGNORE).sum())
    model.train(was_training)
    if count == 0:
        raise MiniGPTError(f"the {split} split has no reply tokens to evaluate")
    nbytes = int(data.reply_stats[split]["bytes"])
    return EvalResult(loss=nats / count, tokens=count, bytes=nbytes, nats=nats)
