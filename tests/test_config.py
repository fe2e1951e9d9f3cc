import pytest

from minigpt.config import PRESETS, config_from_dict, load_config, save_config
from minigpt.errors import MiniGPTError


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_are_valid(name):
    config = load_config(preset=name)
    assert config.model.n_embd % config.model.n_head == 0


def test_shakespeare_preset_values():
    c = load_config(preset="shakespeare-char")
    assert (c.train.batch_size, c.model.block_size, c.model.n_layer) == (64, 128, 6)
    assert (c.model.n_head, c.model.n_embd, c.model.dropout) == (8, 256, 0.1)
    assert (c.train.lr, c.train.max_iters, c.train.log_interval) == (3e-4, 5000, 500)
    assert c.train.checkpoint_interval == 1000
    assert c.model.mlp == "gelu_exact"  # nanoGPT's nn.GELU(); the default stays GPT-2's tanh
    assert load_config().model.mlp == "gelu"


def test_course_preset_values():
    c = load_config(preset="course-100m")
    m, t = c.model, c.train
    assert (m.n_layer, m.n_head, m.n_embd, m.block_size, m.vocab_size) == (12, 12, 768, 512, 32000)
    assert (m.dropout, m.bias, t.batch_size, t.grad_accum, t.lr) == (0.1, False, 12, 4, 6e-4)
    assert (t.max_iters, t.eval_interval) == (5000, 500)


def test_layers_override_in_order(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('preset = "cpu-demo"\n[model]\nn_layer = 3\n[train]\nlr = 0.01\n')
    c = load_config(config_file=path, overrides={"lr": "0.02"})
    assert c.model.n_layer == 3  # file over preset
    assert c.model.n_embd == PRESETS["cpu-demo"]["n_embd"]  # preset over default
    assert c.train.lr == 0.02  # command line over file


def test_saved_config_reproduces(tmp_path):
    c = load_config(preset="shakespeare-char", overrides={"seed": 7})
    save_config(c, tmp_path / "config.toml")
    assert load_config(config_file=tmp_path / "config.toml") == c
    assert config_from_dict(c.to_dict()) == c


def test_unknown_key_suggests_near_miss(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[model]\nn_layers = 3\n")
    with pytest.raises(MiniGPTError, match="unknown config key 'n_layers'.*did you mean 'n_layer'"):
        load_config(config_file=path)


def test_ill_typed_value_names_key():
    with pytest.raises(MiniGPTError, match="'n_layer' expects int"):
        load_config(overrides={"n_layer": "six"})
    with pytest.raises(MiniGPTError, match="'bias' expects bool"):
        load_config(overrides={"bias": "maybe"})


def test_unknown_preset():
    with pytest.raises(MiniGPTError, match="did you mean 'cpu-demo'"):
        load_config(preset="cpu-dem")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"n_embd": 100, "n_head": 3}, "divisible by n_head"),
        ({"lr": -1}, "lr must be a positive"),
        ({"block_size": 0}, "block_size must be a positive"),
        ({"dropout": 1.5}, "dropout must be in"),
        ({"dtype": "float33"}, "did you mean 'float32'"),
    ],
)
def test_out_of_range_values(overrides, message):
    with pytest.raises(MiniGPTError, match=message):
        load_config(overrides=overrides)


def test_invalid_toml(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[model\n")
    with pytest.raises(MiniGPTError, match="not valid TOML"):
        load_config(config_file=path)


@pytest.mark.parametrize(
    ("overrides", "pattern"),
    [
        ({"pos": "rop"}, r"pos must be learned or rope, got 'rop' \(did you mean 'rope'\?\)"),
        ({"norm": "rms"}, r"norm must be layernorm or rmsnorm, got 'rms'"),
        (
            {"mlp": "swiglu2"},
            r"mlp must be gelu or gelu_exact or relu2 or swiglu.*did you mean 'swiglu'",
        ),
        ({"optimizer": "adam"}, r"optimizer must be adamw or muon.*did you mean 'adamw'"),
        ({"schedule": "wsd2"}, r"schedule must be cosine or wsd"),
        ({"pos": "rope", "n_embd": 30, "n_head": 2}, r"rope needs an even head size, got .* 15"),
        ({"logit_softcap": -1.0}, r"logit_softcap must be >= 0"),
        ({"muon_lr": 0.0}, r"muon_lr must be a positive number"),
        ({"muon_momentum": 1.0}, r"muon_momentum must be in \[0, 1\)"),
        ({"cooldown_frac": 1.5}, r"cooldown_frac must be in \[0, 1\]"),
    ],
)
def test_modern_options_are_checked(overrides, pattern):
    with pytest.raises(MiniGPTError, match=pattern):
        load_config(overrides=overrides)


def test_modern_presets_resolve():
    fast = load_config(preset="cpu-fast")
    assert (fast.model.pos, fast.model.norm, fast.train.optimizer) == ("rope", "rmsnorm", "muon")
    # Exactly Qwen3's architecture (issue 16): SwiGLU, QK-norm, no soft-cap, no biases.
    assert (fast.model.mlp, fast.model.qk_norm, fast.model.logit_softcap) == ("swiglu", True, 0.0)
    big = load_config(preset="modern-124m")
    assert (big.model.n_layer, big.model.n_embd, big.model.block_size) == (12, 768, 1024)
    # The course presets keep the classic GPT-2 architecture; the two that reproduce nanoGPT's
    # recipes have its exact GELU, the course's 100M model GPT-2's tanh GELU.
    gelus = {"shakespeare-char": "gelu_exact", "course-100m": "gelu", "cpu-demo": "gelu_exact"}
    for name, gelu in gelus.items():
        model = load_config(preset=name).model
        assert (model.pos, model.norm, model.mlp, model.qk_norm) == (
            "learned",
            "layernorm",
            gelu,
            False,
        )


def test_batch_size_auto_keeps_the_effective_batch(tmp_path):
    config = load_config(preset="course-100m", overrides={"batch_size": "auto"})
    assert (config.train.batch_size, config.train.effective_batch) == (0, 48)
    path = tmp_path / "c.toml"
    path.write_text('preset = "cpu-demo"\n[train]\nbatch_size = "auto"\n')
    assert load_config(config_file=path).train.effective_batch == 16
    explicit = load_config(overrides={"batch_size": "auto", "effective_batch": 64})
    assert explicit.train.effective_batch == 64
    with pytest.raises(MiniGPTError, match="batch_size must be a positive integer or auto"):
        load_config(overrides={"batch_size": -2})


def test_training_engine_options(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[train]\ncompile = true\n")  # a TOML bool for the auto/true/false field
    assert load_config(config_file=path).train.compile == "true"
    assert load_config().train.dtype == "auto" and load_config().train.compile == "auto"
    with pytest.raises(MiniGPTError, match="on_bad_loss must be stop or skip.*'skip'"):
        load_config(overrides={"on_bad_loss": "skp"})
    with pytest.raises(MiniGPTError, match="compile must be auto, true or false"):
        load_config(overrides={"compile": "maybe"})
    with pytest.raises(MiniGPTError, match="spike_threshold must be 0"):
        load_config(overrides={"spike_threshold": 0.5})
    with pytest.raises(MiniGPTError, match="keep_checkpoints must be >= 1"):
        load_config(overrides={"keep_checkpoints": 0})


@pytest.mark.parametrize("name", ["weight_decay", "grad_clip", "rope_base", "muon_weight_decay"])
@pytest.mark.parametrize("value", ["inf", "nan", "-inf"])
def test_non_finite_numbers_are_refused_in_one_line(name, value):
    # inf passed these fields' range checks (inf >= 0), and nan every "< 0" check.
    with pytest.raises(MiniGPTError, match=f"^{name} must be a finite number, got {value}$"):
        load_config(overrides={name: value})


@pytest.mark.parametrize("name", ["max_new_tokens", "top_k", "num_samples", "context_shift"])
@pytest.mark.parametrize("value", [float("inf"), 2.5, True])
def test_sample_config_whole_number_fields_refuse_floats_and_bools(name, value):
    from minigpt.config.sampling import SampleConfig

    with pytest.raises(MiniGPTError, match=f"{name} must be a whole number"):
        SampleConfig(**{name: value}).validate()


def test_sample_config_takes_numpy_integers():
    import numpy as np

    from minigpt.config.sampling import SampleConfig

    SampleConfig(top_k=np.int64(5), max_new_tokens=np.int32(3)).validate()
