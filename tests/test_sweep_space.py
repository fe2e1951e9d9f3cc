import math

import optuna
import pytest

from minigpt.config import load_config
from minigpt.errors import MiniGPTError
from minigpt.sweep.space import load_space, parse_space


def test_field_types_decide_how_ranges_are_sampled():
    space = parse_space(
        {
            "params": {
                "n_layer": {"low": 2, "high": 6},  # int field -> int range
                "lr": {"low": 1e-4, "high": 1e-1, "log": True},
                "dropout": {"low": 0, "high": 0.2, "step": 0.1},  # float field, int bounds
                "bias": [True, False],
            }
        }
    )
    kinds = {name: p.kind for name, p in space.params.items()}
    assert kinds == {"n_layer": "int", "lr": "float", "dropout": "float", "bias": "choice"}
    assert space.params["dropout"].grid() == [0.0, 0.1, 0.2]
    assert space.params["n_layer"].describe() == "n_layer in [2, 6]"


def test_random_sampling_respects_bounds_and_log_scale():
    space = parse_space(
        {
            "params": {
                "lr": {"low": 1e-5, "high": 1e-1, "log": True},
                "dropout": {"low": 0.0, "high": 0.5},
                "n_embd": {"low": 32, "high": 256, "step": 32},
                "n_head": [2, 4],
            }
        }
    )
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    points = [space.suggest(study.ask()) for _ in range(400)]
    lrs = [p["lr"] for p in points]
    assert all(1e-5 <= lr <= 1e-1 for lr in lrs)
    # log-uniform: half the samples lie below the geometric mean 1e-3 (uniform would put ~1%)
    assert 0.4 < sum(lr < 1e-3 for lr in lrs) / len(lrs) < 0.6
    decades = [sum(10**-k <= lr < 10 ** (-k + 1) for lr in lrs) for k in range(5, 1, -1)]
    assert min(decades) > 60  # each of the 4 decades gets about 100
    dropouts = [p["dropout"] for p in points]
    assert all(0.0 <= d <= 0.5 for d in dropouts) and max(dropouts) > 0.45
    assert 0.4 < sum(d < 0.25 for d in dropouts) / len(dropouts) < 0.6  # linear, not log
    assert {p["n_embd"] for p in points} == set(range(32, 257, 32))
    assert all(isinstance(p["n_embd"], int) for p in points)
    assert {p["n_head"] for p in points} == {2, 4}


def test_grid_enumerates_points_in_file_order():
    space = parse_space({"params": {"lr": [1e-3, 3e-3], "n_layer": {"low": 1, "high": 3}}})
    assert space.params["n_layer"].step is None
    with pytest.raises(MiniGPTError, match="continuous range"):
        parse_space({"params": {"lr": {"low": 1e-4, "high": 1e-2}}}).grid()
    space = parse_space(
        {"params": {"lr": [1e-3, 3e-3], "n_layer": {"low": 1, "high": 3, "step": 2}}}
    )
    assert space.grid() == [
        {"lr": 1e-3, "n_layer": 1},
        {"lr": 1e-3, "n_layer": 3},
        {"lr": 3e-3, "n_layer": 1},
        {"lr": 3e-3, "n_layer": 3},
    ]


def test_constraints_name_the_broken_rule_and_values():
    space = parse_space(
        {
            "params": {"n_head": [2, 3]},
            "constraints": ["n_embd % n_head == 0", "n_layer * n_embd <= 4096 and not bias"],
        }
    )
    config = load_config(overrides={"n_embd": 64, "n_head": 2, "n_layer": 2, "bias": False})
    config.model.n_head = 3  # a trial's value, set before validation
    assert space.violated(config) == (
        "constraint 'n_embd % n_head == 0' does not hold (n_embd=64, n_head=3)"
    )
    config.model.n_head = 2
    assert space.violated(config) is None
    config.model.n_layer = 100
    assert "n_layer * n_embd <= 4096" in space.violated(config)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"params": {"n_layers": [2, 4]}},
            "unknown config field 'n_layers'.*did you mean 'n_layer'",
        ),
        ({"params": {"max_iters": [10, 20]}}, "max_iters cannot be set.*--budget"),
        ({"params": {"lr": {"low": 1e-2, "high": 1e-3}}}, "low \\(0.01\\) must be below high"),
        ({"params": {"lr": {"low": 0.0, "high": 1e-3, "log": True}}}, "log range needs low > 0"),
        ({"params": {"lr": {"low": 1e-4, "hihg": 1e-3}}}, "unknown key 'hihg'.*'high'"),
        ({"params": {"n_layer": {"low": 1.5, "high": 4}}}, "expects int, got 1.5"),
        ({"params": {"device": {"low": 1, "high": 2}}}, "range needs a numeric field"),
        ({"params": {}}, "sweeps nothing"),
        ({"params": {"lr": [1e-3]}, "constrains": []}, "unknown key 'constrains'"),
        ({"params": {"lr": [1e-3]}, "constraints": ["__import__('os')"]}, "uses Call"),
        ({"params": {"lr": [1e-3]}, "constraints": ["n_emb > 2"]}, "unknown field 'n_emb'"),
        ({"params": {"lr": [1e-3]}, "fixed": {"eval_intervall": 5}}, "'eval_interval'"),
    ],
)
def test_bad_spaces_fail_in_one_line(data, message):
    with pytest.raises(MiniGPTError, match=message):
        parse_space(data)


def test_load_space_reads_toml(tmp_path):
    path = tmp_path / "space.toml"
    path.write_text("[params]\nlr = { low = 1e-4, high = 1e-2, log = true }\nn_layer = [1, 2]\n")
    space = load_space(path)
    assert space.params["lr"].log and math.isclose(space.params["lr"].low, 1e-4)
    path.write_text("[params\n")
    with pytest.raises(MiniGPTError, match="search space .* is not valid TOML"):
        load_space(path)
    with pytest.raises(MiniGPTError, match="search space .*missing.toml not found"):
        load_space(tmp_path / "missing.toml")


def test_modern_options_are_sweepable():
    """The model and optimizer options are plain config fields: categorical and ranges."""
    space = parse_space(
        {
            "params": {
                "pos": ["learned", "rope"],
                "mlp": ["gelu", "relu2", "swiglu"],
                "optimizer": ["adamw", "muon"],
                "muon_lr": {"low": 0.005, "high": 0.1, "log": True},
                "qk_norm": [True, False],
            }
        }
    )
    assert {n: p.kind for n, p in space.params.items()} == {
        "pos": "choice",
        "mlp": "choice",
        "optimizer": "choice",
        "muon_lr": "float",
        "qk_norm": "choice",
    }
    assert space.params["mlp"].grid() == ["gelu", "relu2", "swiglu"]
    config = load_config(overrides={"pos": "rope", "mlp": "swiglu", "optimizer": "muon"})
    assert (config.model.pos, config.model.mlp, config.train.optimizer) == (
        "rope",
        "swiglu",
        "muon",
    )
