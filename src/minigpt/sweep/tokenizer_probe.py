"""``prepare --tokenizer auto``: choose ``char`` or a BPE size by a quick, bounded probe.

The vocabulary that suits a corpus depends on its size and on how repetitive it is, and a
wrong one fails silently: on issue 19's ~1 MB Azerbaijani corpus a 1,500-token BPE model
memorised the templated part and reached 4.5 bits per byte on the held-out tail where the
char model reached 1.2. So the probe measures instead of guessing. For each candidate
(``char``, and byte-level BPE at half, one and two times ``suggested_vocab_size`` of the
corpus) it trains a tiny model for a fixed number of steps on the same text, measures bits
per byte on the same held-out text, and picks the lowest. Bits per byte, not loss per token,
is the fair yardstick across tokenizers (``evaluation.metrics``).

- Same text for every candidate: the corpus is read and cleaned once (a char prepare, with
  the caller's reading, cleaning and split options); the probe's train text is up to
  ``probe_bytes`` of its train split, and the held-out text is the start of its val split
  (the tail of the corpus, or whole documents with ``split="documents"``). A BPE candidate
  learns its merges from the train text only; the char candidate keeps the corpus's
  characters, as the final dataset will.
- Bounded: a tiny model (2 layers, 64 wide, block 64, batch 16) for ``steps`` steps on
  ``threads`` torch threads; no compile, no checkpoints but the last. The defaults take about
  a minute for four candidates on a 2-core machine (BENCHMARKS.md, issue 19).
- Deterministic given the seed: fixed steps, not wall time, decide the budget.

It lives in ``sweep`` (it trains models, a small search); ``data.prepare`` knows nothing of it
and refuses ``tokenizer="auto"`` with a pointer here.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from minigpt.config import load_config
from minigpt.config.probe import ProbeConfig
from minigpt.data.clean import CleanConfig
from minigpt.data.dataset import Dataset
from minigpt.data.meta import META_FILE, check_output_folder
from minigpt.data.prepare import prepare_dataset
from minigpt.data.tokenizer import load_tokenizer
from minigpt.data.vocab_check import SMALLEST_BPE, suggested_vocab_size
from minigpt.errors import MiniGPTError
from minigpt.evaluation.evaluate import evaluate_checkpoint
from minigpt.training.trainer import train

# prepare_dataset's arguments the probe decides itself.
OWN_ARGUMENTS = ("tokenizer", "vocab_size", "force", "quiet")


@dataclass
class Candidate:
    kind: str  # char or bpe
    vocab_size: int = 0  # bpe only

    @property
    def name(self) -> str:
        return self.kind if self.kind == "char" else f"bpe-{self.vocab_size}"


@dataclass
class ProbeScore:
    candidate: Candidate
    bits_per_byte: float
    train_loss: float = float("nan")
    seconds: float = 0.0
    # from the candidate's dataset: its size, and prepare's vocabulary check (BPE only)
    vocab_size: int = 0
    bytes_per_token: float = float("nan")
    vocabulary: dict | None = None


@dataclass
class ProbeReport:
    scores: list[ProbeScore]
    chosen: Candidate
    train_bytes: int
    heldout_bytes: int
    corpus_bytes: int
    config: ProbeConfig = field(default_factory=ProbeConfig)

    def to_json(self) -> dict[str, Any]:
        return {
            "chosen": self.chosen.name,
            "train_bytes": self.train_bytes,
            "heldout_bytes": self.heldout_bytes,
            "corpus_bytes": self.corpus_bytes,
            "steps": self.config.steps,
            "seed": self.config.seed,
            "scores": [
                {
                    "candidate": s.candidate.name,
                    "vocab_size": s.vocab_size,
                    "bits_per_byte": _number(s.bits_per_byte),
                    "bytes_per_token": _number(s.bytes_per_token),
                    "train_loss": _number(s.train_loss),
                    "seconds": s.seconds,
                    "tokens_per_entry": (s.vocabulary or {}).get("tokens_per_entry"),
                    "rare_entries": (s.vocabulary or {}).get("rare_entries"),
                }
                for s in self.scores
            ],
        }


def _number(x: float) -> float | None:
    """JSON has no NaN: a number rounded for reading, or null."""
    return round(x, 4) if math.isfinite(x) else None


# (candidate, probe dataset folder, held-out text file) -> score
Scorer = Callable[[Candidate, Path, Path], ProbeScore]


def candidates(corpus_bytes: int) -> list[Candidate]:
    """``char``, and BPE at half, one and two times the suggested size for the corpus."""
    middle = suggested_vocab_size(corpus_bytes)
    sizes = sorted({max(SMALLEST_BPE, middle // 2 // 64 * 64), middle, 2 * middle})
    return [Candidate("char"), *(Candidate("bpe", v) for v in sizes)]


def pick(scores: Sequence[ProbeScore]) -> Candidate:
    """The candidate with the lowest bits per byte; on a tie the earlier one (char, then the
    smaller vocabulary: cheaper to train and to run)."""
    finite = [s for s in scores if math.isfinite(s.bits_per_byte)]
    if not finite:
        raise MiniGPTError("the tokenizer probe could not score any candidate")
    return min(finite, key=lambda s: s.bits_per_byte).candidate


def _slice_text(folder: Path, probe_bytes: int, val_fraction: float) -> tuple[str, str]:
    """Train and held-out text of a char dataset: the end of train next to the start of val,
    about ``probe_bytes`` in all (chars stand in for bytes in the cut)."""
    data = Dataset(folder)
    tok = load_tokenizer(folder)
    want_val = max(1, int(probe_bytes * val_fraction))
    want_train = max(1, probe_bytes - want_val)

    def take(split: str, count: int, from_end: bool) -> str:
        shards = data.splits[split].shards
        parts: list[np.ndarray] = []
        for shard in reversed(shards) if from_end else shards:  # only what is needed is read
            need = count - sum(len(p) for p in parts)
            if need <= 0:
                break
            parts.append(np.asarray(shard[-need:] if from_end else shard[:need]))
        ids = np.concatenate(parts[::-1] if from_end else parts)
        return tok.decode(ids.tolist())

    return take("train", want_train, True), take("val", want_val, False)


def _train_config(data: Path, out: Path, config: ProbeConfig) -> Any:
    return load_config(
        overrides=dict(
            data=str(data),
            out_dir=str(out),
            n_layer=config.n_layer,
            n_head=config.n_head,
            n_embd=config.n_embd,
            block_size=config.block_size,
            batch_size=config.batch_size,
            lr=config.lr,
            max_iters=config.steps,
            warmup_iters=min(20, config.steps // 10),
            weight_decay=0.1,
            eval_interval=config.steps,
            eval_iters=2,
            log_interval=config.steps,
            checkpoint_interval=config.steps,
            keep_checkpoints=1,
            sample_tokens=0,
            tensorboard=False,
            compile="false",
            device="cpu",
            dtype="float32",
            seed=config.seed,
        )
    )


def train_and_score(config: ProbeConfig) -> Scorer:
    """The real scorer: train the tiny model on the probe dataset, evaluate the held-out text."""

    def score(candidate: Candidate, data: Path, heldout: Path) -> ProbeScore:
        run = data.with_name(data.name + "-run")
        log_path = data.with_name(data.name + "-train.log")
        with open(log_path, "w", encoding="utf-8") as log, contextlib.redirect_stdout(log):
            result = train(_train_config(data, run, config), force=True, watch=False)
        evaluation = evaluate_checkpoint(run, heldout, device="cpu", batch_size=32)
        return ProbeScore(candidate, evaluation.bits_per_byte, train_loss=result.train_loss)

    return score


def probe_tokenizers(
    inputs: Sequence[str | Path],
    *,
    probe: ProbeConfig | None = None,
    scorer: Scorer | None = None,
    quiet: bool = False,
    work_dir: str | Path | None = None,
    tried: Sequence[Candidate] = (),
    **prepare_args: Any,
) -> ProbeReport:
    """Score each candidate tokenizer on ``inputs``; ``prepare_args`` are ``prepare_dataset``'s
    reading, cleaning and split options (as the final dataset will get them). ``tried``
    replaces the default candidates (``candidates``), e.g. to map a range of sizes."""
    config = probe or ProbeConfig()
    config.check()
    for name in OWN_ARGUMENTS:
        if name in prepare_args:
            raise MiniGPTError(f"the tokenizer probe chooses {name} itself; leave it out")
    with tempfile.TemporaryDirectory(prefix="minigpt-probe-", dir=work_dir) as tmp_name:
        tmp = Path(tmp_name)
        base = _base_dataset(inputs, tmp, config, prepare_args)
        meta = Dataset(base).meta
        corpus = sum(s.bytes for s in meta.splits.values())
        train_text, heldout_text = _slice_text(base, config.probe_bytes, meta.val_fraction)
        (tmp / "train.txt").write_text(train_text, encoding="utf-8")
        heldout = tmp / "heldout.txt"
        heldout.write_text(heldout_text, encoding="utf-8")
        score = scorer or train_and_score(config)
        scores = []
        for candidate in tried or candidates(corpus):
            start = time.time()
            data = _candidate_dataset(candidate, tmp, base, config)
            with _threads(config.threads):
                result = score(candidate, data, heldout)
            result.seconds = round(time.time() - start, 1)
            meta = Dataset(data).meta
            tokens = sum(s.tokens for s in meta.splits.values())
            result.vocab_size = int(meta.tokenizer["vocab_size"])
            result.bytes_per_token = sum(s.bytes for s in meta.splits.values()) / max(1, tokens)
            result.vocabulary = meta.report.get("vocabulary")
            scores.append(result)
            if not quiet:
                print(f"probe: {_row(result)}", file=sys.stderr, flush=True)
    return ProbeReport(
        scores,
        pick(scores),
        train_bytes=len(train_text.encode("utf-8")),
        heldout_bytes=len(heldout_text.encode("utf-8")),
        corpus_bytes=corpus,
        config=config,
    )


def _base_dataset(inputs: Sequence[str | Path], tmp: Path, config: ProbeConfig, args: dict) -> Path:
    """The corpus read and cleaned once, as characters (with the caller's options); the
    split is the caller's, with ``auto`` meaning the tail as for char."""
    args = {**args, "seed": args.get("seed", config.seed)}
    return prepare_dataset(inputs, tmp / "text", tokenizer="char", quiet=True, **args)


def _candidate_dataset(candidate: Candidate, tmp: Path, base: Path, config: ProbeConfig) -> Path:
    """The probe's train text prepared with ``candidate`` (its 2% tail is the trainer's own
    val, unused for the choice); cleaning is off: the text is already clean."""
    tokenizer: Any = candidate.kind
    if candidate.kind == "char":
        tokenizer = load_tokenizer(base)  # the corpus's characters, as the final dataset
    return prepare_dataset(
        [tmp / "train.txt"],
        tmp / candidate.name,
        tokenizer=tokenizer,
        vocab_size=candidate.vocab_size or SMALLEST_BPE,
        split="tail",
        val_fraction=0.02,
        clean=CleanConfig(fix_mojibake=False, control_chars=False, nfc=False, dedupe=False),
        seed=config.seed,
        workers=1,
        quiet=True,
    )


@contextlib.contextmanager
def _threads(count: int):
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _row(s: ProbeScore) -> str:
    per_entry = f"{s.vocabulary['tokens_per_entry']:6,.0f}" if s.vocabulary else "     -"
    return (
        f"{s.candidate.name:>10s}  {s.bits_per_byte:7.4f} bits/byte  "
        f"{s.bytes_per_token:5.2f} bytes/token  {per_entry} tokens/entry  "
        f"train loss {s.train_loss:6.3f}  {s.seconds:5.1f} s"
    )


def format_probe(report: ProbeReport) -> str:
    """The table the probe chose by, and its choice."""
    lines = [
        f"tokenizer probe: {len(report.scores)} candidates, {report.config.steps} steps of a "
        f"{report.config.n_layer}x{report.config.n_embd} model each, trained on "
        f"{report.train_bytes:,} bytes, scored on {report.heldout_bytes:,} held-out bytes"
    ]
    best = report.chosen.name
    for s in report.scores:
        mark = "  <- chosen" if s.candidate.name == best else ""
        lines.append(f"  {_row(s)}{mark}")
    return "\n".join(lines)


def prepare_auto(
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    *,
    probe: ProbeConfig | None = None,
    force: bool = False,
    quiet: bool = False,
    scorer: Scorer | None = None,
    **prepare_args: Any,
) -> Path:
    """``prepare_dataset`` with the tokenizer the probe picks (``--tokenizer auto``); the
    probe's table goes to the report and to ``meta.json`` (``extra.tokenizer_probe``).
    ``scorer`` replaces the tiny training run (another yardstick, or a test's fake)."""
    out = Path(out_dir)
    check_output_folder(out, force)  # refuse before any training
    work = out.parent if out.parent.exists() else None
    report = probe_tokenizers(
        inputs, probe=probe, scorer=scorer, quiet=quiet, work_dir=work, **prepare_args
    )
    if not quiet:
        print(format_probe(report))
    chosen = report.chosen
    prepare_dataset(
        inputs,
        out,
        tokenizer=chosen.kind,
        vocab_size=chosen.vocab_size or 32000,
        force=force,
        quiet=quiet,
        **prepare_args,
    )
    _record(out, report)
    return out


def _record(out: Path, report: ProbeReport) -> None:
    """Add the probe to ``meta.json`` (written beside it, then renamed over it)."""
    path = out / META_FILE
    meta = json.loads(path.read_text(encoding="utf-8"))
    meta.setdefault("extra", {})["tokenizer_probe"] = report.to_json()
    tmp = path.with_name(META_FILE + ".tmp")
    tmp.write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)
