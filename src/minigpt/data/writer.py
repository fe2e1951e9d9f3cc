"""The last stage of ``prepare``: encoded batches, in input order, become the split shards.

Documents are dropped (empty, too short, duplicate), each kept one is given its split, ids and
separators are written, and everything is counted for the dataset report.
"""

from __future__ import annotations

import bisect
import random
from array import array
from pathlib import Path

import numpy as np

from minigpt.data.clean import MOJIBAKE_LINES
from minigpt.data.encode import Batch, Pool, batches
from minigpt.data.meta import SEPARATOR, SPLITS, SplitInfo, token_dtype
from minigpt.data.plan import Plan, Progress, empty_corpus
from minigpt.data.shards import COPY_TOKENS, ShardWriter
from minigpt.data.sources import read_pieces
from minigpt.data.tokenizer import CharTokenizer, Tokenizer
from minigpt.data.vocab_check import check_vocabulary
from minigpt.errors import MiniGPTError


def encode_corpus(pool: Pool, plan: Plan, tokenizer_path: Path, writer: SplitWriter) -> None:
    bar = Progress(plan.total_bytes, "encoding", plan.progress)
    try:
        pieces = read_pieces(plan.files, plan.sources, bar)
        for batch in pool.map(batches(pieces), plan.clean, str(tokenizer_path), writer.dtype.str):
            writer.add(batch)
    finally:
        bar.close()


class SplitWriter:
    """Takes encoded batches in order: drops empty, short and duplicate documents, picks each
    document's split, writes ids and separators to the shards, and counts for the report."""

    def __init__(self, folder: Path, tok: Tokenizer, plan: Plan) -> None:
        self.tok, self.plan = tok, plan
        self.dtype = token_dtype(tok.vocab_size)
        names = ("train",) if plan.split == "tail" else SPLITS
        self.shards = {s: ShardWriter(folder, s, self.dtype, plan.shard_tokens) for s in SPLITS}
        self.stats = {s: dict(documents=0, chars=0, bytes=0) for s in names}
        eot = tok.eot_id
        self.sep = np.array([eot], self.dtype) if eot is not None else None  # char: lazily
        self.sep_chars = 0 if eot is not None else len(SEPARATOR)
        self.seen: set[bytes] = set()
        self.dropped = dict(empty=0, too_short=0, duplicates=0)
        self.cleaning: dict[str, int] = {}
        self.token_counts = np.zeros(tok.vocab_size, dtype=np.int64)
        self.train_counts = np.zeros(tok.vocab_size, dtype=np.int64)  # for the vocab check
        self.kept = 0
        self.read = 0
        self.skip = False  # inside a dropped multi-piece document
        self.current = "train"
        self.offset = random.Random(plan.seed).random()
        # where each train piece and document ends, to count chars and documents per split
        # when the tail of the stream becomes val
        self.piece_ends = [array("q"), array("q"), array("q")]  # tokens, chars, bytes
        self.doc_starts, self.doc_ends = array("q"), array("q")

    def _choose_split(self) -> str:
        """Val takes one document in every 1 / val_fraction, from a seeded offset."""
        if self.plan.split == "tail":
            return "train"
        f, i = self.plan.val_fraction, self.kept
        return "val" if int((i + 1) * f + self.offset) > int(i * f + self.offset) else "train"

    def _drop(self, batch: Batch, i: int) -> str | None:
        """Why a document is left out, or None. Parts of long documents are always kept."""
        piece = batch.pieces[i]
        if not (piece.first and piece.last):
            return None
        if batch.blank[i]:
            return "empty"
        if batch.chars[i] < self.plan.clean.min_chars:
            return "too_short"
        if self.plan.clean.dedupe:
            if batch.hashes[i] in self.seen:
                return "duplicates"
            self.seen.add(batch.hashes[i])
        return None

    def add(self, batch: Batch) -> None:
        for key, n in batch.counts.items():
            self.cleaning[key] = self.cleaning.get(key, 0) + n
        ends = np.cumsum([0, *batch.lengths])
        kept, kept_train = [], []
        for i, piece in enumerate(batch.pieces):
            ids = batch.ids[ends[i] : ends[i + 1]]
            if piece.first:
                self.read += 1
                reason = self._drop(batch, i)
                self.skip = reason is not None
                if self.skip:
                    self.dropped[reason] += 1
                    continue
                self.current = self._choose_split()
                self._start_document(self.current)
            elif self.skip:
                continue
            self.shards[self.current].write(ids)
            kept.append(ids)
            stats = self.stats[self.current]
            stats["chars"] += batch.chars[i]
            stats["bytes"] += batch.nbytes[i]
            if self.current == "train":
                kept_train.append(ids)
                self._record_piece(piece.last)
        if kept:
            self.token_counts += self._count(np.concatenate(kept))
        if kept_train:
            self.train_counts += self._count(np.concatenate(kept_train))

    def _count(self, ids: np.ndarray) -> np.ndarray:
        return np.bincount(ids.astype(np.int64), minlength=self.tok.vocab_size)[
            : self.tok.vocab_size
        ]

    def _start_document(self, split: str) -> None:
        stats = self.stats[split]
        if stats["documents"]:
            if self.sep is None:
                self.sep = np.asarray(self.tok.encode(SEPARATOR), self.dtype)
            self.shards[split].write(self.sep)
            if split == "train":
                np.add.at(self.train_counts, self.sep.astype(np.int64), 1)
            stats["chars"] += self.sep_chars
            stats["bytes"] += self.sep_chars
            if split == "train":
                self._record_piece(False)
        stats["documents"] += 1
        self.kept += 1
        if split == "train":
            self.doc_starts.append(self.shards["train"].tokens)

    def _record_piece(self, last: bool) -> None:
        stats = self.stats["train"]
        tokens, chars, nbytes = self.piece_ends
        tokens.append(self.shards["train"].tokens)
        chars.append(stats["chars"])
        nbytes.append(stats["bytes"])
        if last:
            self.doc_ends.append(self.shards["train"].tokens)

    def finish(self) -> tuple[dict[str, SplitInfo], dict]:
        if self.kept == 0:
            raise empty_corpus(self.plan)
        if self.plan.auto_split and self.stats.get("val", {}).get("documents", 1) == 0:
            self.plan.split = "tail"  # too few documents: every one went to train
            self.stats = {"train": self.stats["train"]}
        if self.plan.split == "tail":
            self._split_tail()
        splits = {}
        for name in SPLITS:
            files = self.shards[name].close()
            st = self.stats[name]
            splits[name] = SplitInfo(
                files, self.shards[name].tokens, st["chars"], st["bytes"], st["documents"]
            )
        self._check(splits)
        return splits, self._report(splits)

    def _split_tail(self) -> None:
        """The last val_fraction of the stream becomes val (chars and bytes counted exactly
        up to the piece the cut falls in, which is decoded)."""
        train = self.shards["train"]
        total = train.tokens
        keep = int(total * (1.0 - self.plan.val_fraction))
        tokens, chars, nbytes = self.piece_ends
        k = bisect.bisect_right(tokens, keep)
        start = tokens[k - 1] if k else 0
        text = self.tok.decode(train.read(start, keep).tolist()) if keep > start else ""
        text = text.rstrip("\ufffd")  # a character cut in two counts in val
        c = (chars[k - 1] if k else 0) + len(text)
        b = (nbytes[k - 1] if k else 0) + len(text.encode("utf-8"))
        whole = self.stats["train"]
        docs_train = bisect.bisect_left(self.doc_starts, keep)
        docs_val = len(self.doc_ends) - bisect.bisect_right(self.doc_ends, keep)
        self.stats = {
            "train": dict(documents=docs_train, chars=c, bytes=b),
            "val": dict(documents=docs_val, chars=whole["chars"] - c, bytes=whole["bytes"] - b),
        }
        for lo in range(keep, total, COPY_TOKENS):  # the tail is not training data
            self.train_counts -= self._count(train.read(lo, min(lo + COPY_TOKENS, total)))
        train.move_tail(keep, self.shards["val"])

    def _check(self, splits: dict[str, SplitInfo]) -> None:
        if self.plan.split == "tail":
            if min(s.tokens for s in splits.values()) < 2:
                total = sum(s.tokens for s in splits.values())
                raise MiniGPTError(
                    f"corpus too small ({total} tokens) to split into train and val; add text"
                )
            return
        for name, info in splits.items():
            if info.documents == 0:
                raise MiniGPTError(
                    f"the {name} split got no documents ({self.kept} kept, val fraction "
                    f"{self.plan.val_fraction}); add documents, split text files on blank "
                    "lines with --paragraphs, or split the token stream with --split tail"
                )

    def _report(self, splits: dict[str, SplitInfo]) -> dict:
        tokens = sum(s.tokens for s in splits.values())
        nbytes = sum(s.bytes for s in splits.values())
        top = np.argsort(-self.token_counts, kind="stable")[:20]
        report = {
            "documents": {"read": self.read, "kept": self.kept, **self.dropped},
            "cleaning": {
                "mojibake_fixed": self.cleaning.get("mojibake_fixed", 0),
                "control_chars_removed": self.cleaning.get("control_chars_removed", 0),
                "nfc_changed": self.cleaning.get("nfc_changed", 0),
                "mojibake_lines": {
                    k.removeprefix(MOJIBAKE_LINES): v
                    for k, v in sorted(self.cleaning.items())
                    if k.startswith(MOJIBAKE_LINES)
                },
                "mojibake_lost": self.cleaning.get("mojibake_lost", 0),
                "steps": {k: v for k, v in vars(self.plan.clean).items()},
            },
            "split": self.plan.split,
            "splits": {
                name: {**vars(s), "bytes_per_token": round(s.bytes / max(1, s.tokens), 3)}
                for name, s in splits.items()
            },
            "bytes_per_token": round(nbytes / max(1, tokens), 3),
            "top_tokens": [
                {
                    "id": int(i),
                    "text": self.tok.decode([int(i)]),
                    "count": int(self.token_counts[i]),
                }
                for i in top
                if self.token_counts[i]
            ],
        }
        vocabulary = check_vocabulary(self.tok, self.train_counts, splits["train"].bytes)
        if vocabulary is not None:
            report["vocabulary"] = vocabulary
        if isinstance(self.tok, CharTokenizer) and self.tok.unk_id is not None:
            report["unknown_chars"] = int(self.token_counts[self.tok.unk_id])
        return report
