"""How big a model is and how much compute it needs.

``param_breakdown`` counts the parameters of ``model.GPT`` part by part from the config alone,
the way the course counts them by hand (token embedding, position embedding, per block
``c_attn``, ``c_proj``, ``c_fc``, ``c_proj``, LayerNorms, then ``ln_f`` and ``lm_head``). Each
part names the module it counts (``prefix``), and the tests check every part against
``sum(p.numel())`` of that module in an instantiated model, so the table cannot drift from the
code. A new model option changes the part builders below (``_attention``, ``_mlp``, ``_norm``,
``_embeddings``, ``_head``) and nothing else.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from minigpt.config import ModelConfig, RunConfig, swiglu_hidden
from minigpt.errors import MiniGPTError
from minigpt.hostmem import require_ram

# GPT-2 small as published (Radford et al. 2019; the Hugging Face "gpt2" checkpoint).
GPT2_SMALL = ModelConfig(
    vocab_size=50257, block_size=1024, n_layer=12, n_head=12, n_embd=768, bias=True
)
GPT2_SMALL_PARAMS = 124_439_808


@dataclass(frozen=True)
class Part:
    """One row of the breakdown: a module's weights and biases, with the arithmetic."""

    name: str
    prefix: str  # the module's parameter-name prefix in GPT, e.g. "transformer.h.0.attn.c_attn"
    weights: int
    biases: int = 0
    formula: str = ""
    shared: bool = False  # tied to another part's tensor: listed, not counted again
    kind: str = "linear"  # "linear" (a matmul weight), "norm" or "embedding"

    @property
    def count(self) -> int:
        return 0 if self.shared else self.weights + self.biases


def _linear(name: str, prefix: str, n_in: int, n_out: int, bias: bool) -> Part:
    formula = f"{n_in:,} x {n_out:,}" + (f" + {n_out:,}" if bias else "")
    return Part(name, prefix, n_in * n_out, n_out if bias else 0, formula)


def _norm(name: str, prefix: str, config: ModelConfig, dim: int | None = None) -> Part:
    """LayerNorm: a gain and (with biases) a shift; RMSNorm: a gain only."""
    d = dim or config.n_embd
    bias = config.bias and config.norm == "layernorm" and dim is None
    formula = f"{d:,}" + (f" + {d:,}" if bias else "")
    return Part(name, prefix, d, d if bias else 0, formula, kind="norm")


def _embeddings(config: ModelConfig) -> list[Part]:
    v, t, d = config.vocab_size, config.block_size, config.n_embd
    wte = Part(
        "token embedding wte", "transformer.wte", v * d, 0, f"{v:,} x {d:,}", kind="embedding"
    )
    if config.pos == "rope":
        return [wte]  # rotary positions have no parameters
    return [
        wte,
        Part(
            "position embedding wpe",
            "transformer.wpe",
            t * d,
            0,
            f"{t:,} x {d:,}",
            kind="embedding",
        ),
    ]


def _attention(config: ModelConfig, prefix: str) -> list[Part]:
    d = config.n_embd
    parts = [_linear("attn.c_attn (q, k, v)", f"{prefix}attn.c_attn", d, 3 * d, config.bias)]
    if config.qk_norm:  # an RMSNorm gain of head size for queries and for keys
        hs = d // config.n_head
        parts += [
            _norm("attn.q_norm", f"{prefix}attn.q_norm", config, hs),
            _norm("attn.k_norm", f"{prefix}attn.k_norm", config, hs),
        ]
    return [*parts, _linear("attn.c_proj", f"{prefix}attn.c_proj", d, d, config.bias)]


def _mlp(config: ModelConfig, prefix: str) -> list[Part]:
    d = config.n_embd
    if config.mlp == "swiglu":  # gate and up in one matrix, 2 x hidden wide
        h = swiglu_hidden(d)
        return [
            _linear("mlp.c_fc (gate, up)", f"{prefix}mlp.c_fc", d, 2 * h, config.bias),
            _linear("mlp.c_proj", f"{prefix}mlp.c_proj", h, d, config.bias),
        ]
    return [
        _linear("mlp.c_fc", f"{prefix}mlp.c_fc", d, 4 * d, config.bias),
        _linear("mlp.c_proj", f"{prefix}mlp.c_proj", 4 * d, d, config.bias),
    ]


def block_parts(config: ModelConfig, index: int = 0) -> list[Part]:
    """The parts of transformer block ``index`` (all blocks have the same shapes)."""
    prefix = f"transformer.h.{index}."
    return [
        _norm("ln_1", f"{prefix}ln_1", config),
        *_attention(config, prefix),
        _norm("ln_2", f"{prefix}ln_2", config),
        *_mlp(config, prefix),
    ]


def _head(config: ModelConfig) -> list[Part]:
    v, d = config.vocab_size, config.n_embd
    head = Part("lm_head", "lm_head", d * v, 0, f"{d:,} x {v:,}", shared=config.tie_embeddings)
    if config.tie_embeddings:
        head = dataclasses.replace(head, formula="tied to wte: counted once")
    norm = "RMSNorm" if config.norm == "rmsnorm" else "LayerNorm"
    return [_norm(f"final {norm} ln_f", "transformer.ln_f", config), head]


@dataclass(frozen=True)
class Breakdown:
    """Every parameter of a GPT, by part. ``total`` is ``sum(p.numel())`` of the model."""

    config: ModelConfig
    embeddings: list[Part]
    block: list[Part]  # one block; there are config.n_layer of them
    final: list[Part]

    @property
    def block_total(self) -> int:
        return sum(p.count for p in self.block)

    @property
    def block_biases(self) -> int:
        return sum(p.biases for p in self.block)

    @property
    def blocks_total(self) -> int:
        return self.config.n_layer * self.block_total

    @property
    def position_params(self) -> int:
        return sum(p.count for p in self.embeddings if p.prefix == "transformer.wpe")

    @property
    def total(self) -> int:
        outside = sum(p.count for p in self.embeddings + self.final)
        return outside + self.blocks_total

    @property
    def matmul_weights(self) -> int:
        """Elements of the weight matrices tokens multiply through (the head, even if tied)."""
        per_block = sum(p.weights for p in self.block if p.kind == "linear")
        return self.config.n_layer * per_block + sum(
            p.weights for p in self.final if p.kind == "linear"
        )

    @property
    def largest_tensor(self) -> int:
        return max(max(p.weights, p.biases) for p in self.embeddings + self.block + self.final)

    def parts(self) -> list[Part]:
        """Every part of every block, with real prefixes: what the model's parameters are."""
        blocks = [p for i in range(self.config.n_layer) for p in block_parts(self.config, i)]
        return self.embeddings + blocks + self.final


def param_breakdown(config: ModelConfig) -> Breakdown:
    """The parameter count of ``GPT(config)``, part by part, without building the model."""
    return Breakdown(config, _embeddings(config), block_parts(config), _head(config))


def param_totals(config: ModelConfig) -> dict[tuple[bool, bool], int]:
    """Totals for (tied, with position embeddings) in all four combinations."""
    out = {}
    for tied in (True, False):
        b = param_breakdown(dataclasses.replace(config, tie_embeddings=tied))
        out[(tied, True)] = b.total
        out[(tied, False)] = b.total - b.position_params
    return out


def model_param_count(config: ModelConfig) -> int:
    """``sum(p.numel())`` of an instantiated GPT, built on the meta device (no memory used)."""
    import torch

    from minigpt.model import GPT

    with torch.device("meta"):
        return GPT(config).num_params()


# Peak bytes per parameter while a model loads (always on the CPU, whatever device it then goes
# to), measured on a 39.6M model (issue 19): from a checkpoint 8.13 (the fp32 GPT and the file's
# tensors), from a Hugging Face folder 14.05 (its tensors, their conversion to minigpt's layout,
# then the GPT); with 10 % slack.
LOAD_BYTES_PER_PARAM = {"checkpoint": 8.8, "hf": 15.5}


def check_load_ram(config: ModelConfig, source: str, kind: str = "checkpoint") -> None:
    """Refuse, in one line, to load a model (``kind``: checkpoint or hf) that would not fit in
    RAM, before reading its tensors."""
    params = param_breakdown(config).total
    need = int(LOAD_BYTES_PER_PARAM[kind] * params)
    what = f"loading {source} ({params / 1e6:,.2f}M parameters)"
    require_ram(need, what, "free some memory, or use a smaller model")


def reconcile(config: ModelConfig, reference: ModelConfig = GPT2_SMALL) -> list[tuple[str, int]]:
    """Walk from ``reference`` to ``config`` one field at a time: (change, parameters added).

    The steps add up exactly to ``total(config) - total(reference)``, so a figure that differs
    from a published one is explained field by field.
    """
    fields = ("vocab_size", "block_size", "bias", "tie_embeddings", "n_layer", "n_embd")
    fields += ("pos", "norm", "mlp", "qk_norm")  # the modern options' shapes
    if config.qk_norm or reference.qk_norm:
        fields += ("n_head",)  # QK-norm's gains are head-sized
    steps, current = [], reference
    for name in fields:
        old, new = getattr(current, name), getattr(config, name)
        if old == new:
            continue
        nxt = dataclasses.replace(current, **{name: new})
        delta = param_breakdown(nxt).total - param_breakdown(current).total
        steps.append((f"{name} {old} -> {new}", delta))
        current = nxt
    return steps


def non_embedding_params(config: ModelConfig) -> int:
    """Parameters that take part in the per-token matmuls (all but the embeddings)."""
    b = param_breakdown(config)
    return b.total - sum(p.count for p in b.embeddings)


def course_figures() -> list[tuple[int, str]]:
    """The course's totals for the 12-layer, 12-head, 768-wide model, each derived or refuted."""
    d, layers = 768, 12
    gpt2 = param_breakdown(GPT2_SMALL).total
    course = dataclasses.replace(GPT2_SMALL, vocab_size=32000, block_size=512, bias=False)
    untied = param_totals(course)[(False, True)]
    # 2 x 32000 x 768 + 512 x 768 + 12 x (12 d^2 + 8 d): minigpt's untied, bias-free count
    # has 2 d of norm weights per block and a final norm of d.
    b_figure = untied + layers * 6 * d - d
    a_figure = 124_417_536
    return [
        (
            gpt2,
            "GPT-2 small as published: vocab 50257, context 1024, biases, tied head "
            "(minigpt counts exactly this)",
        ),
        (
            b_figure,
            f"2 x 32,000 x 768 + 512 x 768 + 12 x (12 x 768^2 + 8 x 768): course-100m's vocab and "
            f"context with an untied head, 8 d of norm/bias vectors per block and no final "
            f"LayerNorm; minigpt's course-100m (no biases) has {untied:,} untied, "
            f"{param_totals(course)[(True, True)]:,} tied",
        ),
        (
            a_figure,
            f"= 768 x {a_figure // d:,}, {gpt2 - a_figure:,} (= {(gpt2 - a_figure) // d} x 768) "
            "below GPT-2 small; no choice of vocab (50257/50304), context, biases, LayerNorms "
            "or tying gives it: an arithmetic slip",
        ),
    ]


def flops_per_token(config: ModelConfig, seq_len: int | None = None) -> int:
    """Training FLOPs per token: 6N for the matmuls plus the attention term 12 L T d.

    N counts the weights each token multiplies through, including the output head (which is
    the tied embedding when weights are tied); T is the sequence length (default block_size).
    Forward is 1/3 of it, backward 2/3.
    """
    t = seq_len or config.block_size
    n = non_embedding_params(config)
    if config.tie_embeddings:
        n += config.vocab_size * config.n_embd  # the head's matmul still costs
    return 6 * n + 12 * config.n_layer * t * config.n_embd


def sized_model_config(config: RunConfig) -> ModelConfig:
    """The model config with its vocabulary known: given, or read from the ``data`` folder."""
    model = config.model
    if model.vocab_size > 0:
        return model
    if not config.train.data:
        raise MiniGPTError(
            "vocab_size is 0 (taken from the dataset at train time); "
            "pass --vocab-size N or --data DATASET_FOLDER"
        )
    from minigpt.data.dataset import Dataset

    return dataclasses.replace(model, vocab_size=Dataset(config.train.data).vocab_size)


def _row(name: str, formula: str, count: int | str) -> str:
    value = f"{count:,}" if isinstance(count, int) else count
    return f"{name:<28}{formula:<34}{value:>15}"


def format_breakdown(config: ModelConfig) -> str:
    """The course-style table for ``minigpt params``, checked against the instantiated model."""
    b = param_breakdown(config)
    c, L = config, config.n_layer
    lines = [
        f"GPT: {L} layers, {c.n_head} heads, n_embd {c.n_embd}, vocab {c.vocab_size:,}, "
        f"block {c.block_size:,}, {'biases' if c.bias else 'no biases'}, "
        f"{'tied' if c.tie_embeddings else 'untied'} head",
        "",
        _row("part", "shape / arithmetic", "parameters"),
        *(_row(p.name, p.formula, p.count) for p in b.embeddings),
        f"one block (x{L}):",
        *(_row("  " + p.name, p.formula, p.count) for p in b.block),
        _row("  one block", f"of which biases {b.block_biases:,}", b.block_total),
        _row(f"all {L} blocks", f"{L} x {b.block_total:,}", b.blocks_total),
        *(_row(p.name, p.formula, p.count) for p in b.final),
        _row("total", "", b.total),
        "",
    ]
    totals = param_totals(config)
    lines.append(f"{'totals':<28}{'with wpe':>17}{'without wpe':>17}")
    for tied in (True, False):
        mark = "  <- this config" if tied == c.tie_embeddings else ""
        name = "tied head" if tied else "untied head"
        lines.append(f"{name:<28}{totals[(tied, True)]:>17,}{totals[(tied, False)]:>17,}{mark}")
    n = non_embedding_params(config)
    lines += [
        "",
        f"non-embedding parameters N: {n:,}",
        f"training FLOPs per token: 6N + 12 x L x T x d = {flops_per_token(config):,} "
        f"(T = block {c.block_size:,})",
    ]
    counted = model_param_count(config)
    verdict = (
        "matches" if counted == b.total else f"MISMATCH: a minigpt bug, table says {b.total:,}"
    )
    lines.append(f"check: sum(p.numel()) of the instantiated GPT = {counted:,} ({verdict})")
    ref = param_breakdown(GPT2_SMALL).total
    lines += [
        "",
        f"vs GPT-2 small as published, {GPT2_SMALL_PARAMS:,} (vocab 50257, block 1024, biases, "
        f"tied; minigpt counts {ref:,}):",
        *(f"  {change:<36}{delta:>+17,}" for change, delta in reconcile(config)),
        f"  {'difference':<36}{b.total - ref:>+17,}",
    ]
    return "\n".join(lines)


def format_course_figures() -> str:
    return "\n".join(
        ["the course's figures for 12 layers x 768:"]
        + [f"  {figure:>13,}  {why}" for figure, why in course_figures()]
    )
