"""minigpt plan: will a training run fit on a GPU, with which micro-batch, and how fast?"""

from __future__ import annotations

import argparse

from minigpt.cli.common import add_config_arguments, config_from_args
from minigpt.gpus import DEFAULT_MFU, GPUS


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "plan",
        help="memory and time of a training run on a GPU",
        description="Estimate the memory of training a config (weights, gradients, AdamW "
        "states, activations with and without flash attention, overhead) in fp32 and mixed "
        "precision on a GPU; whether it fits, the largest micro-batch that does and the "
        "gradient accumulation that keeps the effective batch; tokens/s and time to max_iters.",
    )
    add_config_arguments(p)
    p.add_argument(
        "--gpu",
        default="auto",
        help=f"{'|'.join(GPUS)}, a size like 24GB, or auto: this machine's device (default)",
    )
    p.add_argument("--mfu", type=float, default=DEFAULT_MFU, help="assumed MFU (0.4)")
    p.add_argument("--tflops", type=float, help="peak TFLOPS, for a GPU given as a size")
    p.add_argument(
        "--measure",
        action="store_true",
        help="also run 2 real training steps here and print the measured peak memory",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from minigpt.runtime import device_gpu, resolve_device
    from minigpt.training.plan_report import format_plan, measured_against_estimate
    from minigpt.training.planner import parse_gpu, plan

    config = config_from_args(args)
    device = resolve_device(config.train.device)
    if args.gpu == "auto":
        gpu, device_type = device_gpu(device), device.type
        if args.tflops:
            gpu = parse_gpu(f"{gpu.memory / 1024**3}GB", args.tflops)
    else:
        gpu, device_type = parse_gpu(args.gpu, args.tflops), "cuda"
    result = plan(config, gpu, mfu=args.mfu, device_type=device_type)
    print(format_plan(result))
    if args.measure:
        print(measured_against_estimate(config, device))
    return 0
