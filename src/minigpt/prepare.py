"""``minigpt prepare``: text files become a dataset folder ready for training.

A dataset folder holds:

- ``train.bin`` / ``val.bin``: flat little-endian token ids (uint16 when the vocabulary fits,
  else uint32), read by training through numpy memmaps, so the corpus never sits in RAM;
- ``tokenizer.json``: the tokenizer that produced the ids;
- ``meta.json``: what the folder holds and where it came from (see ``DatasetMeta``).

The folder is written under a temporary name and renamed at the end, so an interrupted prepare
never leaves something that looks like a complete dataset.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import minigpt
from minigpt.errors import MiniGPTError
from minigpt.hf import HF_PREFIX, load_hf_tokenizer
from minigpt.tokenizer import CharTokenizer, Tokenizer

META_FILE = "meta.json"
TEXT_SUFFIXES = {".txt", ".md", ".text", ".rst"}
SPLITS = ("train", "val")


@dataclass
class SourceFile:
    path: str
    bytes: int
    sha256: str


@dataclass
class SplitInfo:
    files: list[str]
    tokens: int
    chars: int
    bytes: int


@dataclass
class DatasetMeta:
    """The contents of ``meta.json``."""

    tokenizer: dict
    dtype: str
    splits: dict[str, SplitInfo]
    sources: list[SourceFile]
    val_fraction: float
    created: str
    minigpt_version: str
    format: str = "minigpt-dataset"
    version: int = 1
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        from dataclasses import asdict

        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> DatasetMeta:
        data = dict(data)
        data["splits"] = {k: SplitInfo(**v) for k, v in data["splits"].items()}
        data["sources"] = [SourceFile(**s) for s in data["sources"]]
        return cls(**data)


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 when every id fits in 16 bits (half the disk and memory), else uint32."""
    return np.dtype("<u2") if vocab_size <= 2**16 else np.dtype("<u4")


def find_text_files(inputs: Sequence[str | Path]) -> list[Path]:
    """Expand files and folders (recursively) into a sorted list of text files."""
    if not inputs:
        raise MiniGPTError("no input given; pass one or more text files or folders")
    files: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found = sorted(
                p for p in item.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES
            )
            if not found:
                raise MiniGPTError(
                    f"folder {item} has no text files ({', '.join(sorted(TEXT_SUFFIXES))}); "
                    "pass the files directly or add some"
                )
            files.extend(found)
        elif item.is_file():
            files.append(item)
        else:
            raise MiniGPTError(f"input {item} does not exist; check the path")
    return files


def read_text(path: Path, encoding: str = "utf-8") -> str:
    """Read a whole file, turning decoding failures into a message with the byte offset."""
    data = path.read_bytes()
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as e:
        raise MiniGPTError(
            f"{path} is not valid {encoding} (byte offset {e.start}); "
            "pass --encoding with the file's real encoding, e.g. --encoding latin-1"
        ) from None
    except LookupError:
        raise MiniGPTError(f"unknown encoding {encoding!r}; e.g. --encoding utf-8") from None


def check_output_folder(out: Path, force: bool) -> None:
    """Refuse to overwrite something that is not a dataset, or a different one, without --force."""
    if force or not out.exists():
        return
    if not out.is_dir():
        raise MiniGPTError(f"{out} exists and is not a folder; choose another --out")
    if not any(out.iterdir()):
        return
    raise MiniGPTError(
        f"{out} already holds {'a dataset' if (out / META_FILE).exists() else 'other files'}; "
        "choose another --out or pass --force to replace it"
    )


def prepare_dataset(
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    *,
    tokenizer: str | Tokenizer = "char",
    val_fraction: float = 0.1,
    encoding: str = "utf-8",
    unknown: str = "error",
    force: bool = False,
    quiet: bool = False,
) -> Path:
    """Tokenize text files into ``out_dir`` and return its path.

    The corpus is the files' texts joined by blank lines; the last ``val_fraction`` of its
    characters is the validation split (the classic split for char-level models).
    """
    if not 0.0 < val_fraction < 1.0:
        raise MiniGPTError(f"val fraction must be between 0 and 1, got {val_fraction}")
    out = Path(out_dir)
    check_output_folder(out, force)
    files = find_text_files(inputs)
    start = time.time()
    texts, sources = [], []
    for path in files:
        text = read_text(path, encoding)
        if not text.strip():
            raise MiniGPTError(f"{path} is empty; remove it from the inputs or add text")
        texts.append(text)
        raw = path.read_bytes()
        sources.append(SourceFile(str(path), len(raw), hashlib.sha256(raw).hexdigest()))
    corpus = "\n\n".join(texts)
    split_at = int(len(corpus) * (1.0 - val_fraction))
    parts = {"train": corpus[:split_at], "val": corpus[split_at:]}
    if min(len(p) for p in parts.values()) < 2:
        raise MiniGPTError(
            f"corpus too small ({len(corpus)} characters) to split into train and val; add text"
        )

    if isinstance(tokenizer, str) and tokenizer.startswith(HF_PREFIX):
        tokenizer = load_hf_tokenizer(tokenizer)
    if isinstance(tokenizer, str):
        if tokenizer != "char":
            raise MiniGPTError(f"unknown tokenizer {tokenizer!r}; choose 'char' or 'hf:DIR'")
        tokenizer = CharTokenizer.train([parts["train"], parts["val"]], unknown=unknown)
    dtype = token_dtype(tokenizer.vocab_size)

    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        splits = {}
        for name, text in parts.items():
            ids = tokenizer.encode_array(text).astype(dtype)
            ids.tofile(tmp / f"{name}.bin")
            splits[name] = SplitInfo(
                [f"{name}.bin"], int(ids.size), len(text), len(text.encode("utf-8"))
            )
        tokenizer.save(tmp)
        meta = DatasetMeta(
            tokenizer={
                "kind": tokenizer.kind,
                "vocab_size": tokenizer.vocab_size,
                "file": "tokenizer.json",
                "fingerprint": tokenizer.fingerprint(),
            },
            dtype=dtype.name,
            splits=splits,
            sources=sources,
            val_fraction=val_fraction,
            created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            minigpt_version=minigpt.__version__,
            extra={"seconds": round(time.time() - start, 3)},
        )
        (tmp / META_FILE).write_text(json.dumps(meta.to_json(), indent=2, ensure_ascii=False))
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if not quiet:
        print(summarize(out, meta))
    return out


def summarize(out: Path, meta: DatasetMeta) -> str:
    tr, va = meta.splits["train"], meta.splits["val"]
    return (
        f"prepared {out}: {meta.tokenizer['kind']} tokenizer, vocab {meta.tokenizer['vocab_size']}, "
        f"train {tr.tokens:,} tokens, val {va.tokens:,} tokens ({meta.dtype})"
    )
