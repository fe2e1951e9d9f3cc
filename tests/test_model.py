import math

import pytest
import torch

from minigpt.config import ModelConfig, swiglu_hidden
from minigpt.model.gpt import GPT, Rotary, SwiGLU
from minigpt.model.kv_cache import KVCache


def closed_form_params(c: ModelConfig) -> int:
    """The GPT-2 parameter count, term by term, as the course derives it."""
    d, v, b = c.n_embd, c.vocab_size, int(c.bias)
    ln = d + b * d  # LayerNorm: weight, and bias if any
    attn = d * 3 * d + b * 3 * d + d * d + b * d
    mlp = d * 4 * d + b * 4 * d + 4 * d * d + b * d
    block = 2 * ln + attn + mlp
    head = 0 if c.tie_embeddings else v * d
    return v * d + c.block_size * d + c.n_layer * block + ln + head


CONFIGS = [
    ModelConfig(vocab_size=65, block_size=64, n_layer=2, n_head=2, n_embd=32),
    ModelConfig(vocab_size=65, block_size=64, n_layer=2, n_head=2, n_embd=32, bias=False),
    ModelConfig(
        vocab_size=100, block_size=32, n_layer=3, n_head=4, n_embd=64, tie_embeddings=False
    ),
    ModelConfig(
        vocab_size=100,
        block_size=32,
        n_layer=1,
        n_head=1,
        n_embd=16,
        bias=False,
        tie_embeddings=False,
    ),
]


@pytest.mark.parametrize("config", CONFIGS)
def test_parameter_count_matches_closed_form(config):
    model = GPT(config)
    assert model.num_params() == closed_form_params(config)
    assert model.num_params() == sum(p.numel() for p in model.parameters())


def test_gpt2_small_count_on_meta_device():
    config = ModelConfig(vocab_size=50257, block_size=1024, n_layer=12, n_head=12, n_embd=768)
    with torch.device("meta"):
        model = GPT(config)
    assert model.num_params() == 124_439_808 == closed_form_params(config)


def test_weights_are_tied_by_default():
    model = GPT(CONFIGS[0])
    assert model.lm_head.weight is model.transformer.wte.weight
    assert GPT(CONFIGS[2]).lm_head.weight is not GPT(CONFIGS[2]).transformer.wte.weight


def test_initial_loss_is_near_uniform():
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=65, block_size=32, n_layer=2, n_head=2, n_embd=64)
    model = GPT(config)
    idx, targets = torch.randint(0, 65, (2, 8, 32))
    _, loss = model(idx, targets)
    assert abs(loss.item() - math.log(65)) < 0.1


def test_forward_shapes_and_causality():
    torch.manual_seed(0)
    model = GPT(CONFIGS[0]).eval()
    idx = torch.randint(0, 65, (2, 10))
    logits, loss = model(idx)
    assert logits.shape == (2, 10, 65) and loss is None
    changed = idx.clone()
    changed[:, -1] = (changed[:, -1] + 1) % 65
    # The future must not influence the past.
    assert torch.allclose(model(changed)[0][:, :-1], logits[:, :-1], atol=1e-6)


def test_residual_projections_are_scaled():
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=50, block_size=16, n_layer=8, n_head=4, n_embd=256)
    model = GPT(config)
    std = model.transformer.h[0].attn.c_proj.weight.std().item()
    assert abs(std - 0.02 / math.sqrt(16)) < 0.001
    assert abs(model.transformer.h[0].mlp.c_fc.weight.std().item() - 0.02) < 0.001


def test_too_long_sequence_is_refused():
    model = GPT(CONFIGS[0])
    with pytest.raises(ValueError, match="exceeds block_size"):
        model(torch.zeros(1, 65, dtype=torch.long))


def test_tiny_model_overfits_tiny_text():
    torch.manual_seed(0)
    text = "hello world, this is minigpt. " * 4
    chars = sorted(set(text))
    ids = torch.tensor([[chars.index(c) for c in text]])
    config = ModelConfig(
        vocab_size=len(chars), block_size=ids.size(1) - 1, n_layer=2, n_head=2, n_embd=64
    )
    model = GPT(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    x, y = ids[:, :-1], ids[:, 1:]
    first = None
    for _ in range(150):
        _, loss = model(x, y)
        first = first if first is not None else loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.1 * first


# -- modern options ------------------------------------------------------------------------------


def test_default_state_dict_is_exactly_gpt2():
    """The defaults keep GPT-2's parameter names and shapes (checkpoints, export, the course)."""
    d, v, t = 32, 65, 64
    expected = {
        "transformer.wte.weight": (v, d),
        "transformer.wpe.weight": (t, d),
        "transformer.ln_f.weight": (d,),
        "transformer.ln_f.bias": (d,),
        "lm_head.weight": (v, d),
    }
    for i in range(2):
        h = f"transformer.h.{i}."
        expected.update(
            {
                h + "ln_1.weight": (d,),
                h + "ln_1.bias": (d,),
                h + "attn.c_attn.weight": (3 * d, d),
                h + "attn.c_attn.bias": (3 * d,),
                h + "attn.c_proj.weight": (d, d),
                h + "attn.c_proj.bias": (d,),
                h + "ln_2.weight": (d,),
                h + "ln_2.bias": (d,),
                h + "mlp.c_fc.weight": (4 * d, d),
                h + "mlp.c_fc.bias": (4 * d,),
                h + "mlp.c_proj.weight": (d, 4 * d),
                h + "mlp.c_proj.bias": (d,),
            }
        )
    state = GPT(CONFIGS[0]).state_dict()
    assert {k: tuple(v.shape) for k, v in state.items()} == expected
    assert all(
        isinstance(m, torch.nn.LayerNorm)
        for m in GPT(CONFIGS[0]).modules()
        if "Norm" in type(m).__name__
    )


def modern(**overrides) -> ModelConfig:
    values = dict(vocab_size=65, block_size=32, n_layer=2, n_head=2, n_embd=32)
    return ModelConfig(**{**values, **overrides})


def test_rope_has_no_position_table_and_no_extra_state():
    model = GPT(modern(pos="rope"))
    keys = model.state_dict().keys()
    assert "transformer.wpe.weight" not in keys
    assert not any("rotary" in k for k in keys)  # the angles are recomputed, not saved


def test_rope_scores_depend_only_on_relative_position():
    """q_m . k_n == q_(m+s) . k_(n+s): shifting both tokens leaves their score unchanged."""
    torch.manual_seed(0)
    rotary = Rotary(head_size=16, max_len=64)
    q, k = torch.randn(1, 1, 1, 16), torch.randn(1, 1, 1, 16)

    def score(m: int, n: int) -> float:
        qm = rotary(q, torch.tensor([m]))
        kn = rotary(k, torch.tensor([n]))
        return (qm * kn).sum().item()

    for m, n in [(5, 2), (9, 9), (3, 0)]:
        for shift in (1, 7, 40):
            assert score(m + shift, n + shift) == pytest.approx(score(m, n), abs=1e-4)
    assert score(5, 2) != pytest.approx(score(5, 4), abs=1e-3)  # but the distance matters
    # A rotation keeps lengths: rope changes directions, not norms.
    assert rotary(q, torch.tensor([13])).norm() == pytest.approx(q.norm().item(), rel=1e-5)


def test_rope_model_is_causal():
    torch.manual_seed(0)
    model = GPT(modern(pos="rope")).eval()
    idx = torch.randint(0, 65, (2, 12))
    logits, _ = model(idx)
    changed = idx.clone()
    changed[:, -1] = (changed[:, -1] + 1) % 65
    assert torch.allclose(model(changed)[0][:, :-1], logits[:, :-1], atol=1e-6)


@pytest.mark.parametrize(
    "option",
    [
        dict(norm="rmsnorm"),
        dict(qk_norm=True),
        dict(mlp="relu2"),
        dict(mlp="swiglu"),
        dict(mlp="gelu_exact"),
        dict(pos="rope", norm="rmsnorm", qk_norm=True, mlp="swiglu", bias=False),
    ],
)
def test_options_train_a_step(option):
    torch.manual_seed(0)
    model = GPT(modern(**option))
    idx, targets = torch.randint(0, 65, (2, 2, 16))
    _, loss = model(idx, targets)
    loss.backward()
    assert abs(loss.item() - math.log(65)) < 0.3
    assert all(p.grad is not None for p in model.parameters())


def test_option_modules():
    model = GPT(modern(norm="rmsnorm", qk_norm=True, mlp="swiglu"))
    block = model.transformer.h[0]
    assert isinstance(block.ln_1, torch.nn.RMSNorm) and isinstance(
        model.transformer.ln_f, torch.nn.RMSNorm
    )
    assert block.attn.q_norm.weight.shape == (16,)
    assert isinstance(block.mlp, SwiGLU) and block.mlp.c_fc.weight.shape == (
        2 * swiglu_hidden(32),
        32,
    )
    assert swiglu_hidden(768) == 2048
    relu2 = GPT(modern(mlp="relu2")).transformer.h[0].mlp
    x = torch.tensor([-2.0, 0.5, 3.0])
    assert torch.equal(relu2.act(x), torch.tensor([0.0, 0.25, 9.0]))


def test_gelu_options_compute_the_erf_and_the_tanh_formulas():
    x = torch.linspace(-4.0, 4.0, 81)
    exact = 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))
    tanh = 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    gelu_exact = GPT(modern(mlp="gelu_exact")).transformer.h[0].mlp.act
    gelu = GPT(modern()).transformer.h[0].mlp.act  # the default: GPT-2's, as old checkpoints
    assert torch.allclose(gelu_exact(x), exact, atol=1e-6)
    assert torch.allclose(gelu(x), tanh, atol=1e-6)
    assert (exact - tanh).abs().max() > 1e-4  # the two are different functions


def test_logit_softcap_bounds_the_logits():
    torch.manual_seed(0)
    model = GPT(modern(logit_softcap=2.0, tie_embeddings=False))
    with torch.no_grad():
        model.lm_head.weight.mul_(1000)
    logits, _ = model(torch.randint(0, 65, (1, 8)))
    assert logits.abs().max() <= 2.0
    assert logits.abs().max() > 1.9  # saturated, not zeroed


def test_zero_init_proj_makes_every_block_the_identity():
    torch.manual_seed(0)
    model = GPT(modern(zero_init_proj=True))
    for name, p in model.named_parameters():
        if name.endswith("c_proj.weight"):
            assert torch.count_nonzero(p) == 0
    x = torch.randn(2, 8, 32)
    block = model.transformer.h[0]
    assert torch.equal(block(x, torch.arange(8)), x)
    assert model.transformer.h[0].mlp.c_fc.weight.std() > 0.01  # the rest is initialised as usual


def lively_model(block_size=16, vocab=50, **options):
    """Random weights scaled up, so greedy decoding does not collapse into one repeated token."""
    torch.manual_seed(0)
    config = ModelConfig(
        vocab_size=vocab, block_size=block_size, n_layer=2, n_head=4, n_embd=32, **options
    )
    model = GPT(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0, 0.4)
    return model


def test_cached_forward_matches_full_forward():
    model = lively_model()
    idx = torch.randint(0, 50, (2, 12))
    full, _ = model(idx)
    cache = KVCache(model.config.block_size)
    # A prefill of 5, a chunk of 4 (a mask that is neither causal nor empty), 3 single steps.
    parts = [model(idx[:, :5], kv_cache=cache)[0], model(idx[:, 5:9], kv_cache=cache)[0]]
    parts += [model(idx[:, t : t + 1], kv_cache=cache)[0] for t in range(9, 12)]
    assert cache.pos == 12
    assert torch.allclose(torch.cat(parts, dim=1), full, atol=1e-5)
    last, _ = model(idx, last_only=True)
    assert last.shape == (2, 1, 50) and torch.allclose(last, full[:, -1:], atol=1e-6)
    with pytest.raises(ValueError, match="exceeds block_size"):
        model(idx[:, :5], kv_cache=cache)


@pytest.mark.parametrize("prompt_len", [1, 5, 16, 40])
def test_greedy_cached_equals_uncached(prompt_len):
    # 30 new tokens run past block_size 16: the cache slides its window and must still agree;
    # a prompt of 40 is longer than the block itself.
    model = lively_model()
    idx = torch.randint(0, 50, (2, prompt_len), generator=torch.Generator().manual_seed(1))
    cached = model.generate(idx, 30, temperature=0.0)
    uncached = model.generate(idx, 30, temperature=0.0, use_cache=False)
    assert cached.shape == (2, prompt_len + 30)
    assert torch.equal(cached, uncached)
    assert len(set(cached[0, prompt_len:].tolist())) > 5  # not a degenerate repetition


def test_seeded_sampling_cached_equals_uncached():
    model = lively_model()
    idx = torch.randint(0, 50, (3, 4), generator=torch.Generator().manual_seed(2))
    options = dict(top_k=20, top_p=0.9, repetition_penalty=1.3)
    a = model.generate(idx, 40, 1.0, generator=torch.Generator().manual_seed(5), **options)
    b = model.generate(
        idx, 40, 1.0, generator=torch.Generator().manual_seed(5), use_cache=False, **options
    )
    c = model.generate(idx, 40, 1.0, generator=torch.Generator().manual_seed(6), **options)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_context_shift_trades_context_for_fewer_prefills(monkeypatch):
    model = lively_model()
    resets = []
    original = KVCache.reset
    monkeypatch.setattr(KVCache, "reset", lambda self: resets.append(1) or original(self))
    idx = torch.randint(0, 50, (1, 4))

    def prefills(shift):
        resets.clear()
        list(model.generate_tokens(idx, 40, 0.0, context_shift=shift))
        return len(resets)

    # The cache fills at step 13 (4 prompt + 12 new tokens); from then on shift 1 re-prefills
    # every step, shift 8 every 8th.
    assert prefills(1) == 40 - 13
    assert prefills(8) == math.ceil((40 - 13) / 8)
    with pytest.raises(ValueError, match="context_shift"):
        next(model.generate_tokens(idx, 1, context_shift=17))


def test_generate_needs_a_context_token():
    with pytest.raises(ValueError, match="at least one"):
        lively_model().generate(torch.zeros(1, 0, dtype=torch.long), 3)


ROPE = dict(pos="rope", norm="rmsnorm", qk_norm=True, mlp="relu2", logit_softcap=30.0)


def test_cached_forward_matches_full_forward_with_rope():
    """Cached keys are rotated at their absolute positions: prefill + steps == one pass."""
    model = lively_model(**ROPE)
    idx = torch.randint(0, 50, (2, 12))
    full, _ = model(idx)
    cache = KVCache(model.config.block_size)
    parts = [model(idx[:, :5], kv_cache=cache)[0], model(idx[:, 5:9], kv_cache=cache)[0]]
    parts += [model(idx[:, t : t + 1], kv_cache=cache)[0] for t in range(9, 12)]
    assert torch.allclose(torch.cat(parts, dim=1), full, atol=1e-5)


@pytest.mark.parametrize("prompt_len", [3, 40])
def test_greedy_cached_equals_uncached_with_rope(prompt_len):
    model = lively_model(**ROPE)
    idx = torch.randint(0, 50, (2, prompt_len), generator=torch.Generator().manual_seed(1))
    cached = model.generate(idx, 30, temperature=0.0)  # slides past block_size 16
    uncached = model.generate(idx, 30, temperature=0.0, use_cache=False)
    assert torch.equal(cached, uncached)
    assert len(set(cached[0, prompt_len:].tolist())) > 5


def test_cached_decoding_on_cuda_avoids_cudnn_attention():
    """cuDNN attention plans each new key length once (~40 ms): decoding must not use it."""
    from minigpt.model.kv_cache import cached_attention_kernels

    assert torch.backends.cuda.cudnn_sdp_enabled()
    with cached_attention_kernels(object(), torch.device("cuda")):
        assert not torch.backends.cuda.cudnn_sdp_enabled()
        assert torch.backends.cuda.flash_sdp_enabled()
        assert torch.backends.cuda.mem_efficient_sdp_enabled()
    assert torch.backends.cuda.cudnn_sdp_enabled()  # restored: training keeps every kernel
    for cache, device in ((None, "cuda"), (object(), "cpu")):
        with cached_attention_kernels(cache, torch.device(device)):
            assert torch.backends.cuda.cudnn_sdp_enabled()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_rmsnorm_takes_the_fused_path_under_autocast(dtype):
    import warnings

    config = ModelConfig(
        vocab_size=65, block_size=16, n_layer=1, n_head=2, n_embd=32, norm="rmsnorm", qk_norm=True
    )
    torch.manual_seed(0)
    model = GPT(config)
    idx = torch.randint(0, 65, (2, 16))
    ref, _ = model(idx)
    with warnings.catch_warnings(record=True) as caught, torch.autocast("cpu", dtype=dtype):
        warnings.simplefilter("always")
        out, _ = model(idx)
    # torch warns when an RMSNorm's fp32 weight meets half-precision queries and keys
    assert not [w for w in caught if "Mismatch dtype" in str(w.message)]
    assert ((out.float() - ref).norm() / ref.norm()).item() < 0.05
    # fp32 is unchanged: the weight is already the input's dtype
    norm = model.transformer.h[0].attn.q_norm
    x = torch.randn(3, 16)
    expected = torch.nn.functional.rms_norm(x, (16,), norm.weight, 1e-5)
    assert torch.equal(norm(x), expected)
