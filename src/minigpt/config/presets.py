"""Named presets: the overrides each one applies on top of the dataclass defaults."""

from __future__ import annotations

from typing import Any

from minigpt.config.fields import suggest
from minigpt.errors import MiniGPTError

# The architecture and optimizer of the modern recipe (docs/modern.md), shared by its presets.
MODERN_RECIPE: dict[str, Any] = dict(
    bias=False,
    pos="rope",
    norm="rmsnorm",
    qk_norm=True,
    mlp="relu2",
    tie_embeddings=False,
    logit_softcap=30.0,
    zero_init_proj=True,
    optimizer="muon",
)

# The modern recipe's options that make it exactly Qwen3 (rope, RMSNorm, QK-norm, SwiGLU, no
# biases, no soft-cap): it then exports to transformers without remote code and to GGUF. On
# the CPU race it trains as well as ReLU² with the soft-cap (BENCHMARKS.md, issue 16).
QWEN3_CLASS: dict[str, Any] = dict(mlp="swiglu", logit_softcap=0.0)

PRESETS: dict[str, dict[str, Any]] = {
    # The classic char-level Tiny Shakespeare model, nanoGPT's recipe: its MLP has nanoGPT's
    # exact GELU (nn.GELU()), not GPT-2's tanh approximation, which costs more on a CPU.
    "shakespeare-char": dict(
        mlp="gelu_exact",
        batch_size=64,
        block_size=128,
        n_layer=6,
        n_head=8,
        n_embd=256,
        dropout=0.1,
        lr=3e-4,
        max_iters=5000,
        warmup_iters=100,
        log_interval=500,
        eval_interval=500,
        checkpoint_interval=1000,
        eval_iters=50,
        out_dir="runs/shakespeare-char",
    ),
    # The course's ~100M model: 12 layers, 12 heads, 768 wide, 32k BPE vocab, no biases.
    "course-100m": dict(
        n_layer=12,
        n_head=12,
        n_embd=768,
        block_size=512,
        vocab_size=32000,
        dropout=0.1,
        bias=False,
        batch_size=12,
        grad_accum=4,
        lr=6e-4,
        max_iters=5000,
        warmup_iters=200,
        eval_interval=500,
        eval_iters=100,
        log_interval=50,
        checkpoint_interval=500,
        out_dir="runs/course-100m",
    ),
    # Trains in about two minutes on a 2-core CPU and still writes recognisable text: nanoGPT's
    # CPU shape, with its exact GELU.
    "cpu-demo": dict(
        mlp="gelu_exact",
        n_layer=4,
        n_head=4,
        n_embd=128,
        block_size=64,
        dropout=0.0,
        batch_size=16,
        lr=2e-3,
        max_iters=1800,
        warmup_iters=50,
        weight_decay=0.1,
        eval_interval=300,
        eval_iters=20,
        log_interval=100,
        checkpoint_interval=300,
        out_dir="runs/cpu-demo",
    ),
    # The modern recipe for a 2-core CPU: the classic 4x4x128 model (block 64) with rotary
    # positions, RMSNorm, QK-norm, SwiGLU, an untied head, zero-initialised projections and
    # Muon, at a larger batch (Muon's orthogonalisation costs per step, not per token) and a
    # WSD schedule; its architecture is exactly Qwen3's (QWEN3_CLASS), so it exports without
    # remote code. 200 steps, tuned to end below the classic run's final val loss (1.8857) with
    # two evaluations (each costs about 13 steps), whole-process time in mind (BENCHMARKS.md,
    # issue 17: measured with the ReLU^2 / soft-cap variant, 1.8367 at the end).
    "cpu-fast": dict(
        n_layer=4,
        n_head=4,
        n_embd=128,
        block_size=64,
        dropout=0.0,
        **{**MODERN_RECIPE, **QWEN3_CLASS},
        muon_lr=0.04,
        lr=5e-3,
        beta2=0.99,
        weight_decay=0.0,
        batch_size=32,
        max_iters=200,
        warmup_iters=10,
        schedule="wsd",
        cooldown_frac=0.5,
        min_lr_ratio=0.0,
        eval_interval=100,
        eval_iters=20,
        log_interval=50,
        checkpoint_interval=100,
        out_dir="runs/cpu-fast",
    ),
    # The same recipe at GPT-2 small's size (12 x 12 x 768, block 1024) for a GPU, in the
    # spirit of the GPT-2 speedruns: bf16, compiled, Muon at 0.02, WSD. Not benchmarked here.
    # Supervised fine-tuning on a chat dataset: with --init-from RUN (or hf:DIR), whose model
    # shape the run takes. A lower learning rate than pretraining, a short warm-up, a few
    # hundred steps (a few epochs of a small instruction set), frequent evals on held-out
    # conversations, and padded batches (on CPU, packing's attention mask costs more than the
    # padding it saves: BENCHMARKS.md, issue 15).
    "sft": dict(
        data_format="chat",
        chat_batching="pad",
        dropout=0.0,
        batch_size=16,
        lr=1e-3,
        min_lr_ratio=0.1,
        warmup_iters=10,
        max_iters=300,
        weight_decay=0.0,
        eval_interval=50,
        eval_iters=10,
        log_interval=25,
        checkpoint_interval=100,
        sample_tokens=0,
        out_dir="runs/sft",
    ),
    "modern-124m": dict(
        n_layer=12,
        n_head=12,
        n_embd=768,
        block_size=1024,
        vocab_size=50304,
        dropout=0.0,
        **MODERN_RECIPE,
        muon_lr=0.02,
        lr=3e-3,
        weight_decay=0.0,
        batch_size=16,
        grad_accum=32,
        max_iters=3000,
        warmup_iters=100,
        schedule="wsd",
        cooldown_frac=0.4,
        min_lr_ratio=0.0,
        eval_interval=250,
        eval_iters=50,
        log_interval=10,
        checkpoint_interval=500,
        out_dir="runs/modern-124m",
    ),
}


def preset_overrides(name: str) -> dict[str, Any]:
    if name not in PRESETS:
        raise MiniGPTError(
            f"unknown preset {name!r}{suggest(name, PRESETS)}; choose from {', '.join(PRESETS)}"
        )
    return dict(PRESETS[name])
