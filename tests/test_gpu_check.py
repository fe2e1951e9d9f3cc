"""benchmarks/gpu_check.py --dry-run: the GPU check's code paths at tiny sizes on the CPU.

No GPU is lent to this project most days; running the whole check here (about 20 CPU
seconds, over 10 s of wall time on a busy machine: it trains three tiny models, measures
peak memory in a fresh process and generates) is what keeps the script working for the day
one is.
"""

from __future__ import annotations

import importlib
import math
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"


def import_benchmark(name: str):
    if str(ROOT / "benchmarks") not in sys.path:
        sys.path.insert(0, str(ROOT / "benchmarks"))
    return importlib.import_module(name)


DIAGNOSIS = [
    "fp16 diagnosis: first-step grads, embeddings",
    "fp16 diagnosis: first-step grads, attention qkv",
    "fp16 diagnosis: first-step grads, attention proj",
    "fp16 diagnosis: first-step grads, MLP",
    "fp16 diagnosis: first-step grads, norms",
    "fp16 diagnosis: largest activation magnitude per layer",
    "fp16 diagnosis: control: fp32 again",
    "fp16 diagnosis: control: fp16 unchanged again",
    "fp16 diagnosis: AdamW foreach, not fused",
    "fp16 diagnosis: scaler initial scale 2**10",
    "fp16 diagnosis: no gradient clipping",
    "fp16 diagnosis: no scaler",
    "fp16 diagnosis: verdict",
]


def test_dry_run_passes_every_check_and_prints_one_table():
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--dry-run", "--diagnose-fp16"],
        capture_output=True, text=True, env=env, timeout=600, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| ")][2:]
    checks = [row.split(" | ")[0].removeprefix("| ") for row in rows]
    assert [c.split(" (")[0] for c in checks] == [
        "train course-100m",
        "train modern-124m",
        "peak memory course-100m micro 32",
        "peak memory course-100m micro 32",
        "loss parity bfloat16 vs float32",
        "loss parity float16 vs float32",
        *DIAGNOSIS,
        "generation 0M float32",
        "generation 0M bfloat16",
    ]
    checked = [row for row in rows if "fp16 diagnosis" not in row]
    assert all(row.endswith("| yes |") for row in checked)
    assert "tok/s" in rows[0] and "plan/measured" in rows[2]
    diagnosis = {c.split(" (")[0]: row for c, row in zip(checks, rows, strict=True)}
    assert all(diagnosis[name].endswith("| info |") for name in DIAGNOSIS)
    # Each run says what it ran with, read back from its trainer: the change took.
    ran_with = {name: diagnosis[name].split("ran with ")[-1] for name in DIAGNOSIS[6:12]}
    assert ran_with == {
        DIAGNOSIS[6]: "float32, AdamW fused, scaler off, clip 1 | info |",
        DIAGNOSIS[7]: "float16, AdamW fused, scaler init 2**16, clip 1 | info |",
        DIAGNOSIS[8]: "float16, AdamW foreach, scaler init 2**16, clip 1 | info |",
        DIAGNOSIS[9]: "float16, AdamW fused, scaler init 2**10, clip 1 | info |",
        DIAGNOSIS[10]: "float16, AdamW fused, scaler init 2**16, clip 0 | info |",
        DIAGNOSIS[11]: "float16, AdamW fused, scaler off, clip 1 | info |",
    }
    # On a CPU fp16 autocast tracks fp32: small first-step gradient errors, no underflow.
    for name in DIAGNOSIS[:5]:
        error = float(diagnosis[name].split("rel. error vs fp32 ")[1].split(";")[0])
        assert 0 < error < 1e-2
        assert "(underflow) 0.000% (0 of " in diagnosis[name]
    peaks = diagnosis[DIAGNOSIS[5]]
    assert all(f" {layer} " in peaks for layer in ("h0", "h1", "lm_head", "ln_f"))


def test_the_diagnosis_runs_when_fp16_parity_fails_or_when_asked():
    gpu_check = import_benchmark("gpu_check")
    Row = gpu_check.Row
    passing = [Row("loss parity float16 vs float32 (50 steps)", "...", True)]
    failing = [Row("loss parity float16 vs float32 (50 steps)", "...", False)]
    other_fails = [Row("loss parity bfloat16 vs float32 (50 steps)", "...", False), *passing]
    assert gpu_check.needs_diagnosis(failing, always=False)
    assert gpu_check.needs_diagnosis(passing, always=True)
    assert not gpu_check.needs_diagnosis(passing, always=False)
    assert not gpu_check.needs_diagnosis(other_fails, always=False)


def test_a_run_of_some_checks_records_its_own_section():
    gpu_check = import_benchmark("gpu_check")
    assert gpu_check.section(gpu_check.CHECKS) == ("gpu-check", "## GPU check (issue 17)")
    assert gpu_check.section(("parity",)) == (
        "gpu-check-parity",
        "## GPU check (issue 17): parity only",
    )


def test_no_gpu_without_dry_run_is_one_line_and_nonzero():
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--no-record"],
        capture_output=True, text=True, env=env, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "no CUDA GPU here" in proc.stdout and "--dry-run" in proc.stdout


def test_missing_requirements_are_named():
    gpu_check = import_benchmark("gpu_check")

    assert gpu_check.missing_modules(("torch", "surely_no_such_module_here")) == [
        "surely_no_such_module_here"
    ]


# -- the fp16 diagnosis's parts, each on a case whose answer is known ------------------------------


def test_grad_stats_measure_relative_error_and_underflow_per_kind():
    diag = import_benchmark("fp16_diagnosis")
    ref = {
        "transformer.wte.weight": torch.tensor([3.0, 4.0, 1e-9, 0.0]),
        "transformer.h.0.mlp.c_fc.weight": torch.tensor([1.0, -2.0]),
        "transformer.h.0.mlp.c_fc.bias": torch.tensor([2.0, 0.0]),
    }
    test = {
        "transformer.wte.weight": torch.tensor([3.0, 4.0, 0.0, 0.0]),  # 1e-9 underflowed
        "transformer.h.0.mlp.c_fc.weight": torch.tensor([0.0, -2.0]),  # 1.0 lost
        "transformer.h.0.mlp.c_fc.bias": torch.tensor([2.0, 1.0]),  # 0.0 became 1.0
    }
    stats = diag.grad_stats(ref, test)
    assert set(stats) == {"embeddings", "MLP"}
    assert stats["embeddings"].underflow == 1 and stats["embeddings"].elements == 4
    assert stats["embeddings"].underflow_share == 0.25
    assert stats["embeddings"].rel_error == pytest.approx(1e-9 / 5)
    # MLP: differences (1, 0, 0, 1) against the norm of (1, -2, 2, 0) = 3
    assert stats["MLP"].rel_error == pytest.approx(math.sqrt(2) / 3)
    assert stats["MLP"].underflow == 1 and stats["MLP"].elements == 4


@pytest.mark.parametrize("tied", [True, False])
def test_every_gpt_parameter_has_a_kind(tied):
    diag = import_benchmark("fp16_diagnosis")
    from minigpt.config import ModelConfig
    from minigpt.model import GPT

    model = GPT(ModelConfig(vocab_size=16, block_size=8, n_layer=2, n_head=2, n_embd=8,
                            tie_embeddings=tied))  # fmt: skip
    kinds = {name: diag.param_kind(name) for name, _ in model.named_parameters()}
    expected = {"embeddings", "attention qkv", "attention proj", "MLP", "norms"}
    assert set(kinds.values()) == (expected if tied else expected | {"head"})
    assert kinds["transformer.h.1.attn.c_attn.weight"] == "attention qkv"
    assert kinds["transformer.h.0.ln_2.weight"] == "norms"
    assert kinds["transformer.h.0.mlp.c_proj.weight"] == "MLP"


def test_first_step_grads_halve_the_scale_until_no_gradient_overflows():
    diag = import_benchmark("fp16_diagnosis")
    model = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.ones_(model.weight)

    def loss():  # d loss / d w = 1000, computed in fp16: overflows once scaled past 65504
        return (model.weight.half() * torch.tensor([[1000.0]]).half()).sum()

    grads, scale = diag.first_step_grads(model, loss, 2.0**16)
    assert scale == 2.0**6  # 1000 * 2**6 = 64000 < 65504 < 1000 * 2**7
    assert grads == {"weight": torch.tensor([[1000.0]])}
    assert model.weight.grad is None


class Toy(torch.nn.Module):
    """An embedding in fp32, one block whose fp16 linear feeds an fp32 scale-up, a head."""

    def __init__(self):
        super().__init__()
        scale_up = torch.nn.Module()
        scale_up.forward = lambda x: x.float() * 100
        linear = torch.nn.Linear(2, 2, bias=False).half()
        block = torch.nn.Sequential(linear, scale_up)
        self.transformer = torch.nn.ModuleDict(
            dict(wte=torch.nn.Linear(2, 2, bias=False), h=torch.nn.ModuleList([block]))
        )
        self.lm_head = torch.nn.Linear(2, 1, bias=False)
        with torch.no_grad():
            self.transformer.wte.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, -5.0]]))
            linear.weight.copy_(torch.tensor([[2.0, 0.0], [0.0, 1.4]]))
            self.lm_head.weight.copy_(torch.tensor([[0.0, 0.5]]))

    def forward(self, x):
        x = self.transformer.wte(x)  # (1, -5)
        x = self.transformer.h[0](x.half())  # fp16 (2, -7), then fp32 (200, -700)
        return self.lm_head(x)  # -350


def test_activation_maxima_per_layer_put_fp16_outputs_first():
    diag = import_benchmark("fp16_diagnosis")
    model = Toy()
    peaks = diag.activation_maxima(model, lambda: model(torch.ones(1, 2)))
    assert peaks["wte"] == diag.Peak(5.0, "", False)
    # the block's largest output is fp32 (700), but only its fp16 one (7) can overflow
    assert peaks["h0"] == diag.Peak(7.0, "0", True)
    assert peaks["lm_head"] == diag.Peak(350.0, "", False)
    assert set(peaks) == {"wte", "h0", "lm_head"}
    assert not any(m._forward_hooks for m in model.modules())  # the hooks are gone
    check, result = diag.activation_row(peaks)
    assert result.startswith("wte 5 fp32, h0 7 (0), lm_head 350 fp32; largest fp16 output 7 ")


def test_compare_matches_updates_and_finds_where_curves_part():
    diag = import_benchmark("fp16_diagnosis")
    ref = [float(x) for x in range(20, 0, -1)]  # 20, 19, ..., 1
    curve = ref[:15] + [x * 1.1 for x in ref[15:]]
    c = diag.compare(ref, curve, skipped=2, tolerance=0.02)
    # after 18 updates fp32 was at ref[8:18] = 12..3 (mean 7.5); the run's last 10: 10..1
    # with the last five (5..1) 10% higher: mean 5.5 + 0.1 * 15 / 10 = 5.65
    assert (c.tail, c.applied, c.skipped) == (10, 18, 2)
    assert c.ref == pytest.approx(7.5) and c.mean == pytest.approx(5.65)
    assert c.change == pytest.approx(5.65 / 7.5 - 1)
    assert c.apart_from == 15
    assert diag.compare(ref, ref, 0, 0.02).apart_from is None


def test_verdict_names_the_factor_that_closes_the_gap_against_the_controls():
    diag = import_benchmark("fp16_diagnosis")

    def results(fp32, fp16, **factors):
        changes = {"control: fp32 again": fp32, "control: fp16 unchanged again": fp16,
                   "AdamW foreach, not fused": 0.16, "no gradient clipping": 0.15, **factors}  # fmt: skip
        return {n: diag.Comparison(1.0, 1.0, c, 10, 50, 0, None) for n, c in changes.items()}

    closes = diag.verdict(results(0.0, 0.16, **{"AdamW foreach, not fused": 0.01}), 0.02)
    assert closes.startswith("the gap closes with: AdamW foreach, not fused (")
    nearest = diag.verdict(results(0.0, 0.16), 0.02)
    assert nearest == "no single factor closes the gap; nearest: no gradient clipping (+15.00%)"
    assert "noise" in diag.verdict(results(0.0, 0.01), 0.02)
    assert "fp32 itself does not repeat" in diag.verdict(results(0.05, 0.16), 0.02)


def test_foreach_adamw_replaces_the_fused_one_with_the_same_update():
    diag = import_benchmark("fp16_diagnosis")
    torch.manual_seed(0)
    weights = [torch.randn(4, 3), torch.randn(3)]
    runs = []
    for swap in (False, True):
        params = [torch.nn.Parameter(w.clone()) for w in weights]
        groups = [
            {"params": params[:1], "weight_decay": 0.1},
            {"params": params[1:], "weight_decay": 0.0},
        ]
        trainer = types.SimpleNamespace(optimizer=torch.optim.AdamW(groups, lr=0.01, fused=True))
        if swap:
            diag.use_foreach_adamw(trainer)
            assert trainer.optimizer.defaults["foreach"] and not trainer.optimizer.defaults["fused"]
            assert [g["weight_decay"] for g in trainer.optimizer.param_groups] == [0.1, 0.0]
            assert not any(g["fused"] for g in trainer.optimizer.param_groups)
        for p in params:
            p.grad = torch.ones_like(p)
        trainer.optimizer.step()
        runs.append(params)
    for fused, foreach in zip(*runs, strict=True):
        assert not torch.equal(fused, weights[0]) and torch.allclose(fused, foreach, atol=1e-6)
