"""minigpt export: a run or checkpoint as a Hugging Face model folder or a GGUF file."""

from __future__ import annotations

import argparse

from minigpt.errors import MiniGPTError
from minigpt.interop.formats import HF_DTYPES, QUANTS

FORMATS = ("hf", "gguf")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export",
        help="write a trained model for transformers (hf) or llama.cpp/Ollama (gguf)",
        description="Write a run's newest good checkpoint (or a checkpoint folder) as a "
        "Hugging Face folder that transformers loads offline (the exact GPT-2, Llama, Qwen3 or "
        "Arcee class, else minigpt's own code with trust_remote_code), or as one GGUF file "
        "for llama.cpp, Ollama and LM Studio (gpt2, llama, qwen3; tokenizer inside).",
    )
    p.add_argument("checkpoint", help="run folder (newest good checkpoint) or checkpoint folder")
    p.add_argument("--out", required=True, help="folder to create (hf) or file.gguf (gguf)")
    p.add_argument("--format", default="hf", choices=FORMATS, help="output format (hf)")
    p.add_argument("--best", action="store_true", help="the run's best checkpoint by val loss")
    p.add_argument("--force", action="store_true", help="replace an existing output")
    p.add_argument(
        "--no-check",
        action="store_true",
        help="skip reading the export back with transformers to compare its logits",
    )
    hf = p.add_argument_group("hf")
    hf.add_argument("--dtype", default="float32", choices=HF_DTYPES, help="weights (float32)")
    hf.add_argument(
        "--no-remote-code",
        action="store_true",
        help="refuse a model no transformers class computes exactly, instead of writing "
        "minigpt's own model code into the folder (trust_remote_code=True)",
    )
    gguf = p.add_argument_group("gguf")
    gguf.add_argument("--quant", default="f32", choices=QUANTS, help="weights (f32)")
    gguf.add_argument("--ollama", action="store_true", help="also write an Ollama Modelfile")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.format == "gguf":
        return run_gguf(args)
    if args.quant != "f32" or args.ollama:
        raise MiniGPTError("--quant and --ollama are GGUF options; add --format gguf")
    from minigpt.interop.hf_export import LOGITS_TOLERANCE, export_hf

    result = export_hf(
        args.checkpoint,
        args.out,
        dtype=args.dtype,
        force=args.force,
        check=not args.no_check,
        best=args.best,
        remote_code=not args.no_remote_code,
    )
    print(
        f"exported {result.checkpoint} (iteration {result.iteration}) to {result.folder} "
        f"as {result.architecture}: " + ", ".join(result.files)
    )
    for note in result.notes:
        print(f"note: {note}")
    if result.max_logit_diff is not None:
        print(
            f"checked with transformers: logits match minigpt's (max difference "
            f"{result.max_logit_diff:.1e} <= {LOGITS_TOLERANCE:g}), greedy tokens and "
            "tokenizer ids match"
        )
    elif not args.no_check and not any(n.startswith("not checked") for n in result.notes):
        print("not checked: transformers is not installed (pip install 'minigpt[hf]')")
    return 0


def run_gguf(args: argparse.Namespace) -> int:
    if args.dtype != "float32" or args.no_remote_code:
        raise MiniGPTError("--dtype and --no-remote-code are hf options; GGUF takes --quant")
    from minigpt.interop.gguf import export_gguf
    from minigpt.interop.gguf_check import (
        F32_TOLERANCE,
        gguf_logit_diff,
        gguf_reader_available,
        gguf_reader_too_old,
    )
    from minigpt.interop.loader import load_model

    result = export_gguf(
        args.checkpoint,
        args.out,
        quant=args.quant,
        force=args.force,
        best=args.best,
        ollama=args.ollama,
    )
    print(
        f"exported {result.checkpoint} (iteration {result.iteration}) to "
        + ", ".join(str(f) for f in result.files)
        + f" ({result.size / 1e6:.1f} MB)"
    )
    for note in result.notes:
        print(f"note: {note}")
    if args.no_check:
        return 0
    if not gguf_reader_available():
        print("not checked: transformers' GGUF reader needs pip install 'minigpt[gguf]'")
        return 0
    if old := gguf_reader_too_old():
        print(f"not checked: {old}")
        return 0
    model, _ = load_model(result.checkpoint, "cpu")
    diff = gguf_logit_diff(result.path, model)
    if result.quant == "f32" and not diff <= F32_TOLERANCE:
        raise MiniGPTError(
            f"transformers reads {result.path} with logits {diff:.2e} away from minigpt's "
            f"(over {F32_TOLERANCE:g}); the export is wrong, please report it"
        )
    print(f"checked with transformers' GGUF reader: max logit difference {diff:.1e} ({args.quant})")
    return 0
