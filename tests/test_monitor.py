import sys

import pytest
import torch

from minigpt.config import ModelConfig
from minigpt.extras import available
from minigpt.model.sizing import flops_per_token
from minigpt.training import monitor
from minigpt.training.trainer import train


def test_mfu_from_the_gpu_peak(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H100 80GB HBM3")
    cuda = torch.device("cuda")
    assert monitor.gpu_peak_flops(cuda, torch.bfloat16) == 989e12
    assert monitor.gpu_peak_flops(cuda, torch.float32) == 494e12
    assert monitor.gpu_peak_flops(torch.device("cpu"), torch.bfloat16) is None
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla T4")
    assert monitor.gpu_peak_flops(cuda, torch.float16) == 65e12
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Mystery GPU")
    assert monitor.gpu_peak_flops(cuda, torch.float16) is None
    gpt2 = ModelConfig(vocab_size=50304, block_size=1024, n_layer=12, n_head=12, n_embd=768)
    per_token = flops_per_token(gpt2)
    assert monitor.mfu(per_token, 400_000, 989e12) == pytest.approx(per_token * 4e5 / 989e12)
    assert monitor.mfu(per_token, 400_000, None) is None


def test_mfu_and_the_planner_use_the_same_peaks(monkeypatch):
    """What `minigpt plan --gpu X` assumes is what the trainer's MFU divides by on X."""
    from minigpt.training.planner import GPUS

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    cuda = torch.device("cuda")
    for gpu in GPUS.values():
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None, n=gpu.name: n)
        assert monitor.gpu_peak_flops(cuda, torch.bfloat16) == gpu.mixed_tflops * 1e12 > 0
        assert monitor.gpu_peak_flops(cuda, torch.float32) == gpu.fp32_tflops * 1e12 > 0
    # The trainer runs fp32 matmuls as TF32 on CUDA, so fp32 plans use the TF32 rate.
    assert GPUS["A100-80"].fp32_tflops == 156.0 and GPUS["H100"].fp32_tflops == 494.0
    assert GPUS["A10"].mixed_tflops == 125.0  # not the A10G's 70, nor the A100's 312


def test_formatting():
    assert monitor.format_duration(42) == "42s"
    assert monitor.format_duration(192) == "3m12s"
    assert monitor.format_duration(3720) == "1h02m"
    assert monitor.format_bytes(512) == "512 B"
    assert monitor.format_bytes(3 * 1024**3) == "3.0 GiB"


def test_without_matplotlib_the_plot_is_skipped_with_one_notice(tiny_config, monkeypatch, capsys):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)  # import matplotlib... -> ImportError
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert not available("matplotlib")
    result = train(tiny_config(max_iters=6, eval_interval=2, sample_tokens=0))
    out = capsys.readouterr().out
    assert out.count("matplotlib is not installed") == 1 and len(result.history) == 3
    assert not (result.run_dir / monitor.PLOT_FILE).exists()
    metrics = (result.run_dir / monitor.METRICS_FILE).read_text().splitlines()
    assert sum('"kind": "eval"' in line for line in metrics) == 3
