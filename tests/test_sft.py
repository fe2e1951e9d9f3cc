"""Fine-tuning end to end: prepare --format chat -> train -> chat -> eval -> export (issue 15)."""

import json

import pytest
import torch

import minigpt
from minigpt.cli import main
from minigpt.config import load_config
from minigpt.data.chat_template import DEFAULT_TEMPLATE, encode_with_specials, render
from minigpt.errors import MiniGPTError
from minigpt.evaluation.evaluate import evaluate_checkpoint
from minigpt.inference.chat import chat
from minigpt.inference.chat_completion import chat_prompt_ids, trim_history
from minigpt.interop.loader import load_model
from minigpt.training.trainer import Trainer, train

PAIRS = [
    ("Azərbaycanın paytaxtı?", "Bakı."),
    ("2+2?", "4."),
    ("Salam!", "Salam, necəsən?"),
    ("Rəng?", "Mavi."),
    ("Who are you?", "A tiny model."),
    ("Bye", "Sağ ol!"),
]
TINY = dict(n_layer=2, n_head=2, n_embd=64, block_size=64, dropout=0.0, device="cpu")
TINY.update(compile="false", batch_size=8, lr=3e-3, warmup_iters=10, eval_iters=2)
TINY.update(log_interval=100, sample_tokens=0, tensorboard=False, weight_decay=0.0)


def write_pairs(path, pairs, copies=2):
    records = [{"instruction": q, "output": a} for q, a in pairs] * copies
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n")
    return path


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    """A tiny model trained from scratch on six instruction pairs (padded batches): the issue's
    "a tiny model learns a tiny instruction set", ~5 s on an idle 2-core CPU, shared below."""
    root = tmp_path_factory.mktemp("sft")
    data = minigpt.prepare_chat_dataset(
        [write_pairs(root / "pairs.jsonl", PAIRS)], root / "ds", block_size=64, quiet=True
    )
    overrides = {**TINY, "data": str(data), "out_dir": str(root / "run"), "data_format": "chat"}
    overrides.update(max_iters=200, eval_interval=200, checkpoint_interval=200)
    run = train(load_config(overrides=overrides)).run_dir
    return run, data


def test_a_tiny_model_learns_its_instruction_set_exactly(tuned):
    model, tok = load_model(tuned[0], device="cpu")
    assert tok.chat_template == DEFAULT_TEMPLATE
    for question, answer in PAIRS:
        reply = minigpt.chat_completion(
            model, tok, [{"role": "user", "content": question}], temperature=0, max_new_tokens=40
        )
        assert (reply.text, reply.finish_reason) == (answer, "stop")
        assert reply.completion_tokens == len(answer) + 1  # the reply, then <|end|>


def test_eval_on_a_chat_dataset_counts_replies_only(tuned):
    run, data = tuned
    result = evaluate_checkpoint(run, data, device="cpu")
    meta = json.loads((data / "meta.json").read_text())
    assert result.tokens == meta["report"]["replies"]["val"]["tokens"]
    assert result.bytes == meta["report"]["replies"]["val"]["bytes"]
    assert result.loss < 0.5  # the val pairs repeat train pairs: the replies are learned


def test_chat_loop_answers_with_history_and_system(tuned):
    model, tok = load_model(tuned[0], device="cpu")
    out = []
    lines = iter(["/temperature 0", "2+2?", "Bye", "/reset", "Rəng?"])

    def read(prompt):
        try:
            return next(lines)
        except StopIteration:
            raise EOFError from None

    chat(model, tok, read=read, write=out.append)
    text = "".join(out)
    assert "talk to the model" in text and "4.\n" in text and "Mavi.\n" in text


def test_history_is_trimmed_from_the_oldest_turn(tuned):
    model, tok = load_model(tuned[0], device="cpu")
    system = {"role": "system", "content": "Sağ ol!"}
    turns = []
    for q, a in PAIRS * 3:
        turns += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
    messages = [system, *turns, {"role": "user", "content": "2+2?"}]
    ids, dropped = chat_prompt_ids(tok, messages, 64, 16)
    assert 0 < dropped < len(turns) and len(ids) <= 64 - 16
    kept = [system, *turns[dropped:], messages[-1]]
    assert tok.decode(ids) == render(DEFAULT_TEMPLATE, kept, add_generation_prompt=True)
    assert turns[dropped]["role"] == "user"  # whole exchanges go
    reply = minigpt.chat_completion(model, tok, messages, temperature=0, max_new_tokens=16)
    assert (reply.trimmed_messages, reply.prompt_tokens) == (dropped, len(ids))
    with pytest.raises(MiniGPTError, match="the last message alone does not fit"):
        trim_history([{"role": "user", "content": "x" * 99}], lambda ms: False)


def test_chat_data_and_text_training_never_mix_silently(tuned, tmp_path, text_file):
    _, data = tuned
    overrides = {**TINY, "data": str(data), "out_dir": str(tmp_path / "a"), "max_iters": 1}
    with pytest.raises(MiniGPTError, match="is a chat dataset .*--preset sft"):
        train(load_config(overrides=overrides))
    text = minigpt.prepare_dataset([text_file], tmp_path / "text", quiet=True)
    overrides.update(data=str(text), data_format="chat")
    with pytest.raises(MiniGPTError, match="is a text dataset"):
        train(load_config(overrides=overrides))


def test_fine_tuning_a_pretrained_run_grows_its_vocabulary(tmp_path, text_file):
    text = minigpt.prepare_dataset([text_file], tmp_path / "text", quiet=True)
    overrides = {**TINY, "data": str(text), "out_dir": str(tmp_path / "base"), "max_iters": 2}
    base = train(load_config(overrides=overrides)).run_dir
    pairs = [("To be", "or not to be."), ("To die", "to sleep;")]
    chat_data = minigpt.prepare_chat_dataset(
        [write_pairs(tmp_path / "p.jsonl", pairs)], tmp_path / "chat", tokenizer=base, quiet=True
    )
    config = load_config(
        preset="sft",
        overrides={"data": str(chat_data), "out_dir": str(tmp_path / "tuned"), "device": "cpu"},
    )
    trainer = Trainer(config, init_from=base, watch=False)
    old, _ = load_model(base, device="cpu")
    n = old.config.vocab_size
    assert trainer.model.config.vocab_size == n + 4 and trainer.model.config.n_embd == 64
    wte = trainer.model.transformer.wte.weight.detach()
    assert torch.equal(wte[:n], old.transformer.wte.weight)
    assert torch.allclose(wte[n:], old.transformer.wte.weight.mean(0).expand(4, -1))


def test_export_renders_and_generates_as_minigpt(tuned, tmp_path):
    transformers = pytest.importorskip("transformers")
    from minigpt.interop.hf_export import export_hf

    export_hf(tuned[0], tmp_path / "hf")
    hf_tok = transformers.AutoTokenizer.from_pretrained(tmp_path / "hf")
    hf_model = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "hf")
    model, tok = load_model(tuned[0], device="cpu")
    conversation = [
        {"role": "system", "content": "Sağ ol!"},
        {"role": "user", "content": "Salam!"},
        {"role": "assistant", "content": "Salam, necəsən?"},
        {"role": "user", "content": "2+2?"},
    ]
    for gen in (True, False):
        ours = render(DEFAULT_TEMPLATE, conversation, add_generation_prompt=gen)
        theirs = hf_tok.apply_chat_template(conversation, tokenize=False, add_generation_prompt=gen)
        assert theirs == ours
        ids = hf_tok.apply_chat_template(conversation, add_generation_prompt=gen)
        ids = ids["input_ids"] if not isinstance(ids, list) else ids
        assert list(ids) == encode_with_specials(tok, ours)
    prompt = hf_tok.apply_chat_template(conversation[1:2], add_generation_prompt=True)
    prompt = prompt["input_ids"] if not isinstance(prompt, list) else prompt
    out = hf_model.generate(torch.tensor([prompt]), max_new_tokens=20, do_sample=False)
    reply = hf_tok.decode(out[0, len(prompt) :], skip_special_tokens=True)
    ours = minigpt.chat_completion(model, tok, conversation[1:2], temperature=0, max_new_tokens=20)
    assert reply == ours.text == "Salam, necəsən?"


def test_cli_prepare_chat_reports_and_refuses_bad_lines(tmp_path, capsys):
    good = write_pairs(tmp_path / "good.jsonl", PAIRS)
    code = main(["prepare", "--format", "chat", str(good), "--out", str(tmp_path / "ds")])
    out = capsys.readouterr().out
    assert code == 0 and "12 read, 12 kept" in out and "trained on" in out
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "a", "output": "b"}\n{"messages": [{"role": "x"}]}\n')
    code = main(["prepare", "--format", "chat", str(bad), "--out", str(tmp_path / "b")])
    err = capsys.readouterr().err.strip()
    assert code != 0 and len(err.splitlines()) == 1 and "bad.jsonl:2: messages[1]" in err


def test_fine_tuning_a_hugging_face_folder_grows_its_vocabulary(tmp_path, text_file):
    pytest.importorskip("transformers")
    from minigpt.interop.hf_export import export_hf

    text = minigpt.prepare_dataset([text_file], tmp_path / "text", quiet=True)
    overrides = {**TINY, "data": str(text), "out_dir": str(tmp_path / "base"), "max_iters": 2}
    export_hf(train(load_config(overrides=overrides)).run_dir, tmp_path / "hf", check=False)
    pairs = [("To be", "or not to be."), ("To die", "to sleep;")]
    chat_data = minigpt.prepare_chat_dataset(
        [write_pairs(tmp_path / "p.jsonl", pairs)],
        tmp_path / "chat",
        tokenizer=f"hf:{tmp_path / 'hf'}",
        quiet=True,
    )
    out = tmp_path / "tuned"
    config = load_config(
        preset="sft",
        overrides={"data": str(chat_data), "out_dir": str(out), "device": "cpu", "max_iters": 2},
    )
    config.train.chat_batching = "pack"  # the trainer passes packed rows' segments on
    train(config, init_from=f"hf:{tmp_path / 'hf'}")
    model, tok = load_model(out, device="cpu")
    assert model.config.vocab_size == tok.vocab_size and "<|end|>" in tok.special_tokens


def test_the_server_renders_chat_with_the_template(tuned):
    from minigpt.inference.chat_format import render_chat

    _, tok = load_model(tuned[0], device="cpu")
    messages = [{"role": "user", "content": "2+2?"}]
    prompt = render_chat(tok, messages)
    expected = encode_with_specials(tok, render(DEFAULT_TEMPLATE, messages, True))
    assert prompt.templated and prompt.ids == expected and prompt.stop == ()
    assert prompt.stop_ids[0] == tok.special_tokens["<|end|>"]


def test_the_server_answers_with_the_template(tuned):
    pytest.importorskip("fastapi")
    openai = pytest.importorskip("openai")
    from tests.serve_helpers import live_server

    with live_server([str(tuned[0])]) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="none")
        model = client.models.list().data[0].id
        for question, answer in PAIRS[:2]:
            reply = client.chat.completions.create(
                model=model,
                messages=[{"role": "user", "content": question}],
                max_tokens=30,
                temperature=0,
            )
            assert reply.choices[0].message.content == answer
            assert reply.choices[0].finish_reason == "stop"
