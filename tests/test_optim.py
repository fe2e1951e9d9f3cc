import pytest
import torch

from minigpt.checkpoint import find_checkpoint
from minigpt.config import ModelConfig, TrainConfig
from minigpt.model import GPT
from minigpt.training.optim import MuonAdamW, lr_at, make_optimizer, newton_schulz
from minigpt.training.trainer import Trainer, train


def test_newton_schulz_is_close_to_orthogonal():
    torch.manual_seed(0)
    for shape in [(64, 32), (32, 64), (96, 32)]:  # (square random matrices are near-singular)
        g = torch.randn(shape) * torch.logspace(-1, 1, shape[0])[:, None]  # uneven rows
        before = torch.linalg.svdvals(g)
        after = torch.linalg.svdvals(newton_schulz(g))
        assert before.max() / before.min() > 10  # badly conditioned going in
        assert after.min() > 0.6 and after.max() < 1.25  # every direction moves alike


def test_muon_update_of_a_matrix_is_close_to_orthogonal():
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(32, 64))
    before = w.detach().clone()
    opt = MuonAdamW([dict(params=[w], use_muon=True, lr=1.0, momentum=0.0, nesterov=False)])
    w.grad = torch.randn(32, 64) * torch.logspace(-1, 1, 32)[:, None]  # uneven rows
    opt.step()
    update = before - w.detach()
    sv = torch.linalg.svdvals(update)
    assert sv.min() > 0.6 and sv.max() < 1.25
    # Close to orthogonal: U U^T is near the identity.
    assert (update @ update.T - torch.eye(32)).abs().mean() < 0.15


def test_muon_adam_part_matches_torch_adamw():
    torch.manual_seed(0)
    a = torch.nn.Parameter(torch.randn(10))
    b = torch.nn.Parameter(a.detach().clone())
    ours = MuonAdamW([dict(params=[a], lr=0.01, betas=(0.9, 0.95), weight_decay=0.1)])
    ref = torch.optim.AdamW([b], lr=0.01, betas=(0.9, 0.95), weight_decay=0.1)
    for _ in range(5):
        g = torch.randn(10)
        a.grad, b.grad = g.clone(), g.clone()
        ours.step()
        ref.step()
    assert torch.allclose(a, b, atol=1e-6)


def test_muon_refuses_vectors():
    with pytest.raises(ValueError, match="2-D"):
        MuonAdamW([dict(params=[torch.nn.Parameter(torch.zeros(3))], use_muon=True)])


def test_muon_groups_split_hidden_matrices_from_the_rest():
    model = GPT(ModelConfig(vocab_size=65, block_size=16, n_layer=2, n_head=2, n_embd=32))
    cfg = TrainConfig(optimizer="muon", lr=1e-3, muon_lr=0.02, embed_lr=3e-3)
    opt = make_optimizer(model, cfg, torch.device("cpu"))
    names = {id(p): n for n, p in model.named_parameters()}
    muon, embed, scalars = opt.param_groups
    assert muon["use_muon"] and not embed["use_muon"] and not scalars["use_muon"]
    assert {names[id(p)] for p in embed["params"]} == {
        "transformer.wte.weight",
        "transformer.wpe.weight",
    }
    assert all(names[id(p)].startswith("transformer.h.") for p in muon["params"])
    assert len(muon["params"]) == 2 * 4  # c_attn, attn.c_proj, c_fc, mlp.c_proj per block
    assert all(p.dim() == 1 for p in scalars["params"])
    assert muon["lr_scale"] == pytest.approx(20) and embed["lr_scale"] == pytest.approx(3)


def test_wsd_schedule():
    cfg = TrainConfig(
        lr=1.0, min_lr_ratio=0.0, warmup_iters=10, max_iters=110, schedule="wsd", cooldown_frac=0.2
    )
    assert lr_at(0, cfg) < lr_at(9, cfg) < 1.0
    assert lr_at(10, cfg) == lr_at(60, cfg) == lr_at(88, cfg) == 1.0  # stable
    assert lr_at(99, cfg) == pytest.approx(0.5)  # linear cool-down over the last 22 steps
    assert lr_at(110, cfg) == 0.0


def test_trainer_gives_each_group_its_learning_rate(tiny_config):
    trainer = Trainer(tiny_config(optimizer="muon", lr=1e-3, muon_lr=0.05, warmup_iters=0))
    trainer.train_step()
    lrs = [g["lr"] for g in trainer.optimizer.param_groups]
    assert lrs[0] == pytest.approx(0.05) and lrs[1] == lrs[2] == pytest.approx(1e-3)


def test_resume_is_bit_exact_with_muon(tiny_config, tmp_path):
    options = dict(optimizer="muon", pos="rope", norm="rmsnorm", qk_norm=True, mlp="relu2")
    full = train(tiny_config(out_dir=str(tmp_path / "full"), **options))
    Trainer(tiny_config(out_dir=str(tmp_path / "part"), **options)).run(until=10)
    state = find_checkpoint(tmp_path / "part").optimizer_state()
    assert any("momentum_buffer" in s for s in state["state"].values())  # Muon's state is saved
    resumed = train(tiny_config(out_dir=str(tmp_path / "part"), **options), resume=True)
    assert resumed.history == full.history
    a = find_checkpoint(tmp_path / "full").model_tensors()
    b = find_checkpoint(tmp_path / "part").model_tensors()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
