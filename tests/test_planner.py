import sys

import pytest
import torch

from minigpt import hostmem
from minigpt.config import ModelConfig, load_config
from minigpt.errors import MiniGPTError
from minigpt.model.sizing import flops_per_token, param_breakdown
from minigpt.training.memprobe import measure_peaks
from minigpt.training.plan_report import format_plan
from minigpt.training.planner import (
    GPUS,
    estimate_memory,
    largest_batch,
    parse_gpu,
    plan,
    split_batch,
)
from minigpt.training.trainer import Trainer, train

COURSE = load_config(preset="course-100m")


@pytest.mark.parametrize(
    ("spec", "name"), [("T4", "T4"), ("a100-80", "A100 80"), ("h100", "H100"), ("rtx4090", "4090")]
)
def test_parse_named_gpus(spec, name):
    assert name in parse_gpu(spec).name


def test_parse_gpu_sizes_and_errors():
    assert parse_gpu("24GB").memory == 24 * 1024**3
    assert parse_gpu("12 GiB").memory == 12 * 1024**3
    assert parse_gpu("12gb", tflops=100).mixed_tflops == 100
    assert parse_gpu("12gb").bf16 is None and parse_gpu("T4").bf16 is False
    for bad in ("inf", "nan", "-5"):
        with pytest.raises(MiniGPTError, match="--tflops must be a positive number"):
            parse_gpu("12gb", tflops=float(bad))
    with pytest.raises(MiniGPTError, match="unknown GPU 'V100'.*T4, L4"):
        parse_gpu("V100")


@pytest.mark.parametrize(
    ("effective", "max_micro", "expected"),
    [(48, 100, (48, 1)), (48, 20, (16, 3)), (48, 16, (16, 3)), (12, 5, (4, 3)), (47, 20, (16, 3))],
)
def test_split_batch(effective, max_micro, expected):
    micro, accum = split_batch(effective, max_micro)
    assert (micro, accum) == expected
    assert micro <= max_micro and micro * accum >= effective


def test_largest_batch():
    assert largest_batch(lambda b: b <= 37) == 37
    assert largest_batch(lambda b: b <= 1) == 1
    assert largest_batch(lambda b: False) == 0


def test_memory_components():
    model = COURSE.model
    n = param_breakdown(model).total
    fp32 = estimate_memory(model, 8)
    mixed = estimate_memory(model, 8, mixed=True)
    math_attention = estimate_memory(model, 8, flash=False)
    assert (fp32.weights, fp32.grads, fp32.optimizer) == (4 * n, 4 * n, 8 * n)
    assert mixed.activations < 0.6 * fp32.activations
    assert mixed.weight_copies == 2 * (12 * 12 * 768**2 + 32000 * 768)
    assert math_attention.per_layer - fp32.per_layer >= 8 * 12 * 512 * 512 * 4
    assert estimate_memory(model, 16).peak > fp32.peak
    assert fp32.total > fp32.peak


def test_plan_for_the_course_model_on_a_t4():
    p = plan(COURSE, GPUS["T4"])
    fp32, mixed = p.choices
    assert mixed.fits and mixed.max_micro > fp32.max_micro > 12
    for c in p.choices:
        assert c.micro * c.accum == 48
        assert estimate_memory(COURSE.model, c.max_micro, mixed=c is mixed).total <= 15 * 1024**3
        assert estimate_memory(COURSE.model, c.max_micro + 1, mixed=c is mixed).total > 15 * 1024**3
    assert mixed.tokens_per_s == pytest.approx(65e12 * 0.4 / flops_per_token(COURSE.model))
    assert mixed.seconds == pytest.approx(5000 * 48 * 512 / mixed.tokens_per_s)
    big = load_config(overrides=dict(n_layer=48, n_embd=1600, n_head=25, vocab_size=50257))
    assert plan(big, GPUS["T4"]).choices[0].max_micro == 0  # 1.5B params: no


@pytest.mark.parametrize(
    ("gpu", "dtype", "half"),
    [
        ("T4", "auto", "fp16"),  # no bf16: train autocasts to fp16 with the gradient scaler
        ("A100-80", "auto", "bf16"),
        ("12GB", "auto", "bf16/fp16"),  # a size alone: a T4-class card or an RTX 3060
        ("12GB", "bfloat16", "bf16"),
        ("A100-80", "float16", "fp16"),
    ],
)
def test_mixed_column_names_the_dtype_train_would_use(gpu, dtype, half):
    config = load_config(preset="course-100m", overrides=dict(dtype=dtype))
    p = plan(config, parse_gpu(gpu))
    assert p.half == half
    report = format_plan(p)
    assert f"mixed {half}:" in report
    assert ("gradient scaler" in report) == (half != "bf16")
    if half != "bf16":
        assert "mixed bf16 " not in report and not report.count("mixed bf16:")
    # bf16 and fp16 both save 2-byte activations: the figures are those of mixed=True for all
    assert p.choices[1].memory == estimate_memory(config.model, 12, mixed=True, flash=True)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="peak RSS is read from /proc")
def test_planner_peak_within_15_percent_of_measured_cpu_memory():
    """Real Trainer steps in a subprocess; one config dominated by logits, one by activations."""
    cases = [
        dict(n_layer=1, n_head=2, n_embd=16, block_size=32, vocab_size=8192, batch_size=32),
        dict(n_layer=4, n_head=2, n_embd=16, block_size=32, vocab_size=64, batch_size=256),
    ]
    configs = [load_config(overrides={**c, "grad_accum": 2, "device": "cpu"}) for c in cases]
    measured = measure_peaks(configs, steps=2)
    for config, peak in zip(configs, measured, strict=True):
        estimate = estimate_memory(config.model, config.train.batch_size, device_type="cpu").peak
        assert peak > 30 * 1024**2  # large enough that the process's own noise is small
        assert 0.85 < estimate / peak < 1.15, (config.model, estimate, peak)


def test_batch_size_auto_fits_the_device(tiny_config, monkeypatch, tmp_path):
    config = tiny_config(batch_size="auto", grad_accum=1, effective_batch=8, max_iters=2)
    model = ModelConfig(**{**vars(config.model), "vocab_size": 0})
    assert config.train.batch_size == 0 and model.vocab_size == 0
    trainer = Trainer(config)  # plenty of RAM: one micro-batch of 8
    assert (trainer.cfg.batch_size, trainer.cfg.grad_accum) == (8, 1)

    monkeypatch.delenv(hostmem.NO_CHECK_ENV, raising=False)
    tight = estimate_memory(trainer.config.model, 2, device_type="cpu").total
    # the planner may use HEADROOM of what is available: the budget of micro-batch 2
    monkeypatch.setattr(hostmem, "available_ram", lambda: int(tight / hostmem.HEADROOM) + 1024)
    config = tiny_config(
        batch_size="auto", effective_batch=8, max_iters=2, out_dir=str(tmp_path / "tight")
    )
    result = train(config)
    saved = (result.run_dir / "config.toml").read_text()
    assert "batch_size = 2\n" in saved and "grad_accum = 4\n" in saved
    monkeypatch.setattr(hostmem, "available_ram", lambda: 1000)
    config = tiny_config(batch_size="auto", out_dir=str(tmp_path / "none"))
    with pytest.raises(MiniGPTError, match="does not fit on CPU RAM even at micro-batch 1"):
        Trainer(config)


def test_out_of_memory_is_one_line_with_a_suggestion(tiny_config, monkeypatch):
    def boom(self):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(Trainer, "train_step", boom)
    with pytest.raises(MiniGPTError) as info:
        train(tiny_config(batch_size=4, grad_accum=2))
    message = str(info.value)
    assert "\n" not in message
    assert "out of memory at iteration 0" in message and "micro-batch 4" in message
    assert "try --batch-size 2 --grad-accum 4" in message

    def other(self):
        raise RuntimeError("shape mismatch")

    monkeypatch.setattr(Trainer, "train_step", other)
    with pytest.raises(RuntimeError, match="shape mismatch"):
        train(tiny_config(), force=True)


def test_muon_keeps_one_state_per_hidden_matrix():
    config = ModelConfig(vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=128)
    adamw = estimate_memory(config, 8, device_type="cpu").optimizer
    muon = estimate_memory(config, 8, device_type="cpu", optimizer="muon").optimizer
    hidden = 4 * 12 * 128 * 128  # c_attn, attn.c_proj, c_fc, mlp.c_proj per block
    assert adamw - muon == 4 * hidden
