"""Is the vocabulary large for the corpus? The numbers ``prepare`` reports, and its advice.

A learned vocabulary entry is a row of the embedding and of the output head; it is trained
only by the positions where it occurs. On a small or repetitive corpus a large BPE vocabulary
turns whole phrases into single tokens that occur a handful of times: the model learns them
by heart and predicts new text badly. On issue 19's ~1 MB Azerbaijani corpus a 1,500-token
BPE reached 4.5 bits per byte on the held-out tail where ``char`` reached 1.2, and nothing
warned. Two numbers show it, from the training split only (what the model learns from):

- tokens per entry: training tokens / vocabulary size;
- rare entries: learned (multi-byte) entries seen at most ``RARE_COUNT`` times in training.

The advice fires when either is past its threshold, drawn past every vocabulary measured
not to hurt (BENCHMARKS.md, "Tokenizer advice and --tokenizer auto", issue 19). After
``cpu-fast`` for 400 steps, scored on the same held-out text, BPE beat ``char`` on all three
corpora measured, the issue's kind of Azerbaijani corpus included (2.55 vs 3.61 bits per
byte with 1,500 entries at 118 tokens per entry), and Tiny Shakespeare's BPE-8,192 at 35
tokens per entry, 25% of its entries rare, was still better (2.01 vs 2.46); the probe's best
Azerbaijani-like size had 77% of its entries rare. Hence:

- ``MIN_TOKENS_PER_ENTRY = 32``: below Shakespeare's 35;
- ``MAX_RARE_SHARE = 0.8``: mostly dead rows, past the probe's 77%.

It is advice, not a verdict: the issue saw a 1,500-token model memorise where we did not,
because the model, the corpus and the number of epochs matter; ``--tokenizer auto``
measures it.

The size it suggests is ``suggested_vocab_size``: about 2 x (training bytes) ^ 0.4, rounded
to a multiple of 64 (512 for 1 MB, ~2,200 for 40 MB, ~35,000 for 40 GB, near GPT-2's
50,257 for its 40 GB), the middle of the sizes ``--tokenizer auto`` tries.
"""

from __future__ import annotations

import numpy as np

from minigpt.data.tokenizer import BPETokenizer, CharTokenizer, Tokenizer

RARE_COUNT = 3
MIN_TOKENS_PER_ENTRY = 32
MAX_RARE_SHARE = 0.8
SMALLEST_BPE = 320  # 256 bytes, <|endoftext|> and a few dozen merges


def suggested_vocab_size(train_bytes: int) -> int:
    """A BPE size for a corpus of ``train_bytes``: ~2 x bytes^0.4, a multiple of 64."""
    size = 2.0 * max(1, train_bytes) ** 0.4
    return max(SMALLEST_BPE, int(round(size / 64)) * 64)


def learned_ids(tok: Tokenizer) -> np.ndarray:
    """Ids of the entries the tokenizer learned: not special, and (byte-level BPE) not a
    single byte, whose rows exist whether or not the corpus uses them."""
    special = set(tok.special_tokens.values())
    ids = [i for i in range(tok.vocab_size) if i not in special]
    if isinstance(tok, BPETokenizer):
        ids = [i for i in ids if len(tok.token_bytes(i)) > 1]
    return np.asarray(ids, dtype=np.int64)


def check_vocabulary(tok: Tokenizer, train_counts: np.ndarray, train_bytes: int) -> dict | None:
    """The vocabulary's numbers and advice for the report; None for ``char`` (one entry per
    character seen: nothing to choose)."""
    if isinstance(tok, CharTokenizer):
        return None
    tokens = int(train_counts.sum())
    learned = learned_ids(tok)
    counts = train_counts[learned] if learned.size else np.zeros(0, np.int64)
    rare = int((counts <= RARE_COUNT).sum())
    per_entry = tokens / max(1, tok.vocab_size)
    share = rare / max(1, learned.size)
    out = {
        "vocab_size": tok.vocab_size,
        "train_tokens": tokens,
        "tokens_per_entry": round(per_entry, 1),
        "learned_entries": int(learned.size),
        "rare_entries": rare,
        "rare_count": RARE_COUNT,
        "suggested_vocab_size": suggested_vocab_size(train_bytes),
        "advice": None,
    }
    if per_entry < MIN_TOKENS_PER_ENTRY or share > MAX_RARE_SHARE:
        smaller = min(out["suggested_vocab_size"], tok.vocab_size // 2) // 64 * 64
        size = f"--vocab-size {smaller} or " if smaller >= SMALLEST_BPE else ""
        out["advice"] = (
            f"vocab {tok.vocab_size:,} is large for {_megabytes(train_bytes)}: "
            f"{out['tokens_per_entry']:,.0f} tokens per entry, {rare:,} of {learned.size:,} learned entries "
            f"seen <= {RARE_COUNT} times; try {size}--tokenizer char, or --tokenizer auto"
        )
    return out


def _megabytes(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 10**5 else f"{n / 1e3:.0f} KB"
