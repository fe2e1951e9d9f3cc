import json
import math

import pytest
import torch
from torch.nn import functional as F

from minigpt.cli import main
from minigpt.data.prepare import prepare_dataset
from minigpt.evaluation.evaluate import evaluate_checkpoint, evaluate_tokens
from minigpt.model import GPT
from minigpt.training.trainer import train


def test_bits_per_byte_matches_a_hand_computation(tiny_config, tmp_path):
    corpus = tmp_path / "accents.txt"
    corpus.write_text("Café — naïve résumé, to be or not to be! " * 40, encoding="utf-8")
    data = prepare_dataset([corpus], tmp_path / "accents", quiet=True)
    run = train(tiny_config(max_iters=10, data=str(data)), watch=False).run_dir
    text = "to be—Café, é!"  # multi-byte characters, shorter than block_size + 1
    path = tmp_path / "eval.txt"
    path.write_text(text, encoding="utf-8")
    result = evaluate_checkpoint(run, path, device="cpu")

    from minigpt.interop.loader import load_model

    model, tokenizer = load_model(run, device="cpu")
    ids = torch.tensor([tokenizer.encode(text)])
    assert ids.size(1) <= model.config.block_size + 1
    with torch.no_grad():
        logits, _ = model(ids[:, :-1])
    nats = -F.log_softmax(logits[0], dim=-1).gather(1, ids[0, 1:, None]).sum().item()
    nbytes = len(text.encode("utf-8"))
    assert nbytes > len(text)
    assert result.tokens == len(text) - 1 and result.bytes == nbytes
    assert result.bits_per_byte == pytest.approx(nats / nbytes / math.log(2), rel=1e-5)
    assert result.perplexity == pytest.approx(math.exp(nats / (len(text) - 1)), rel=1e-5)


def test_every_token_is_predicted_once_across_windows():
    model = GPT(tiny_model_config())
    tokens = torch.randint(0, 11, (45,)).numpy()
    result = evaluate_tokens(model, [tokens, tokens[:9]], nbytes=54, batch_size=2)
    with torch.no_grad():  # block_size 8: 44 targets in windows of 8, 8, 8, 8, 8, 4; then 8
        expected = 0.0
        for seq in (tokens, tokens[:9]):
            t = torch.from_numpy(seq).long()
            for s in range(0, len(t) - 1, 8):
                x, y = t[s : s + 8], t[s + 1 : s + 9]
                x = x[: len(y)]
                logits, _ = model(x[None])
                expected += F.cross_entropy(logits[0], y, reduction="sum").item()
    assert result.tokens == 44 + 8
    assert result.nats == pytest.approx(expected, rel=1e-5)


def tiny_model_config():
    from minigpt.config import ModelConfig

    return ModelConfig(vocab_size=11, block_size=8, n_layer=1, n_head=1, n_embd=8)


def test_eval_command_on_a_dataset_split(tiny_config, dataset, capsys):
    run = train(tiny_config(max_iters=10), watch=False).run_dir
    capsys.readouterr()
    assert main(["eval", str(run), "--data", str(dataset), "--json", "--no-progress"]) == 0
    numbers = json.loads(capsys.readouterr().out)
    meta = json.loads((dataset / "meta.json").read_text())
    assert numbers["bytes"] == meta["splits"]["val"]["bytes"]
    assert numbers["tokens"] == meta["splits"]["val"]["tokens"] - 1
    assert numbers["perplexity"] == pytest.approx(math.exp(numbers["loss"]))
    assert main(["eval", str(run), "--data", str(dataset), "--split", "test"]) == 2
    assert "no split 'test'" in capsys.readouterr().err
