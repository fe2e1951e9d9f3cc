"""Chat data: reading each shape, templates, special tokens, masks, packing (issue 15)."""

import gzip
import json

import numpy as np
import pytest
import torch

from minigpt.config import ModelConfig
from minigpt.data.chat import ChatFields, read_conversations, to_conversation
from minigpt.data.chat_dataset import IGNORE, ChatDataset, pack_rows, pad_rows
from minigpt.data.chat_prepare import prepare_chat_dataset
from minigpt.data.chat_template import (
    CHAT_TOKENS,
    DEFAULT_TEMPLATE,
    check_template,
    encode_with_specials,
    render,
    tokenize_conversation,
)
from minigpt.data.special_tokens import add_special_tokens
from minigpt.data.tokenizer import BPETokenizer, CharTokenizer, load_tokenizer
from minigpt.errors import MiniGPTError
from minigpt.model import GPT
from minigpt.model.resize import resize_vocab

EXPECTED = [
    {"role": "system", "content": "Qısa cavab ver."},
    {"role": "user", "content": "Salam"},
    {"role": "assistant", "content": "Salam! Necəsən?"},
]
SHAPES = {
    "openai": {"messages": EXPECTED},
    "sharegpt": {
        "conversations": [
            {"from": "system", "value": "Qısa cavab ver."},
            {"from": "human", "value": "Salam"},
            {"from": "gpt", "value": "Salam! Necəsən?"},
        ]
    },
    "alpaca": {"system": "Qısa cavab ver.", "instruction": "Salam", "output": "Salam! Necəsən?"},
}


def write_jsonl(path, records):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wt", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return path


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz", ".jsonl.zst", ".parquet"])
def test_each_shape_reads_back_as_the_same_conversation(tmp_path, shape, suffix):
    path = tmp_path / f"data{suffix}"
    if suffix == ".parquet":
        pa, pq = pytest.importorskip("pyarrow"), pytest.importorskip("pyarrow.parquet")
        pq.write_table(pa.Table.from_pylist([SHAPES[shape]]), path)
    elif suffix.endswith(".zst"):
        zstd = pytest.importorskip("zstandard")
        line = json.dumps(SHAPES[shape], ensure_ascii=False) + "\n"
        path.write_bytes(zstd.ZstdCompressor().compress(line.encode()))
    else:
        write_jsonl(path, [SHAPES[shape]])
    (conv,) = read_conversations([path])
    assert conv.messages == EXPECTED and conv.skip is None


def test_alpaca_input_and_overridden_field_names():
    record = {"q": "Topla", "context": "2+2", "a": "4"}
    fields = ChatFields.parse(["instruction=q", "input=context", "output=a"])
    conv = to_conversation(record, "x:1", fields)
    assert conv.messages == [
        {"role": "user", "content": "Topla\n\n2+2"},
        {"role": "assistant", "content": "4"},
    ]


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (
            {"messages": [{"role": "wizard", "content": "x"}]},
            r"x:7: messages\[1\] has unknown role",
        ),
        ({"messages": [{"content": "x"}]}, r"x:7: messages\[1\] has no field 'role'"),
        ({"instruction": "x"}, "x:7 has no field 'output' or 'response'"),
        ({"prompt": "x"}, "x:7 has none of the fields"),
        ({"messages": "hello"}, "must be a list of turns"),
        ({"instruction": 3, "output": "x"}, "field 'instruction' holds int"),
    ],
)
def test_bad_records_are_one_line_errors_naming_line_and_field(record, message):
    with pytest.raises(MiniGPTError, match=message) as e:
        to_conversation(record, "x:7")
    assert "\n" not in str(e.value)


def test_bad_field_override():
    with pytest.raises(MiniGPTError, match="did you mean 'instruction'"):
        ChatFields.parse(["instructoin=q"])


def test_unusable_conversations_are_counted_not_trained(tmp_path):
    records = [
        {"instruction": "a", "output": "b"},
        {"instruction": "c", "output": "d"},
        {"instruction": "e", "output": "f"},
        {"instruction": "blank", "output": "   "},
        {"messages": [{"role": "user", "content": "nobody answers"}]},
    ]
    out = prepare_chat_dataset(
        [write_jsonl(tmp_path / "c.jsonl", records)], tmp_path / "ds", quiet=True
    )
    report = json.loads((out / "meta.json").read_text())["report"]["conversations"]
    assert (report["read"], report["kept"]) == (5, 3)
    assert (report["empty_answer"], report["no_answer"]) == (1, 1)


def test_long_conversations_truncated_at_a_turn_or_dropped(tmp_path):
    long = [
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "q" * 80},
        {"role": "assistant", "content": "a" * 80},
    ]
    records = [{"messages": long}, {"instruction": "x", "output": "y"}] * 2
    path = write_jsonl(tmp_path / "c.jsonl", records)
    out = prepare_chat_dataset([path], tmp_path / "t", block_size=40, quiet=True)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["report"]["conversations"]["truncated"] == 2
    data = ChatDataset(out)
    for split in ("train", "val"):
        for ids, mask in data.conversations(split):
            assert len(ids) <= 41 and mask[-1]  # every kept conversation ends with a reply
    out = prepare_chat_dataset([path], tmp_path / "d", block_size=40, long="drop", quiet=True)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["report"]["conversations"]["dropped_long"] == 2
    assert meta["extra"]["format"] == "chat" and meta["extra"]["chat"]["template"]


def char_chat_tokenizer():
    text = "".join(m["content"] for m in EXPECTED)
    return CharTokenizer(sorted(set(text)), specials=CHAT_TOKENS)


def test_mask_covers_exactly_the_replies_and_their_end_of_turn():
    tok = char_chat_tokenizer()
    chat = tokenize_conversation(DEFAULT_TEMPLATE, tok, EXPECTED[1:] + EXPECTED[1:])
    assert tok.decode(chat.ids.tolist()) == render(DEFAULT_TEMPLATE, EXPECTED[1:] * 2)
    trained = tok.decode(chat.ids[chat.mask == 1].tolist())
    assert trained == "Salam! Necəsən?<|end|>" * 2
    assert chat.ids[chat.mask == 1].tolist().count(tok.special_tokens["<|end|>"]) == 2
    assert tok.special_tokens["<|assistant|>"] not in chat.ids[chat.mask == 1]


def test_special_tokens_never_come_out_of_ordinary_text():
    char = char_chat_tokenizer()
    text = "a<|user|>b"
    with pytest.raises(MiniGPTError):  # '<' and '|' are not characters of this vocabulary
        char.encode(text)
    bpe = BPETokenizer.train(
        ["hello <|user|> world, the user said"] * 20, 280, special_tokens=CHAT_TOKENS
    )
    user = bpe.special_tokens["<|user|>"]
    assert user not in bpe.encode("hello <|user|> world") and user in encode_with_specials(
        bpe, "hello <|user|> world"
    )
    grown, added = add_special_tokens(BPETokenizer.train(["hello world"] * 20, 260), CHAT_TOKENS)
    assert added == list(CHAT_TOKENS) and grown.vocab_size == 264
    assert grown.special_tokens["<|end|>"] not in grown.encode("x<|end|>")


def test_extended_char_tokenizer_round_trips_with_its_template(tmp_path):
    tok, added = add_special_tokens(CharTokenizer(list("abc"), unknown="unk"), CHAT_TOKENS)
    assert added == list(CHAT_TOKENS) and tok.special_tokens["<unk>"] == 3
    tok.chat_template = DEFAULT_TEMPLATE
    tok.save(tmp_path)
    back = load_tokenizer(tmp_path)
    assert back.chat_template == DEFAULT_TEMPLATE and back.special_tokens == tok.special_tokens
    assert back.decode(encode_with_specials(back, "<|user|>ab<|end|>")) == "<|user|>ab<|end|>"
    assert CharTokenizer(list("abc")).fingerprint() == CharTokenizer(list("abc")).fingerprint()


def test_template_with_a_token_the_tokenizer_lacks_is_refused():
    template = DEFAULT_TEMPLATE.replace("<|end|>", "<|eot|>")
    with pytest.raises(MiniGPTError, match=r"uses <\|eot\|>, which the tokenizer lacks"):
        check_template(template, char_chat_tokenizer())


def test_resize_keeps_old_rows_bit_identical():
    for tie in (True, False):
        torch.manual_seed(0)
        model = GPT(
            ModelConfig(
                n_layer=1, n_head=2, n_embd=16, block_size=8, vocab_size=10, tie_embeddings=tie
            )
        )
        x = torch.randint(0, 10, (2, 8))
        before = model(x)[0]
        wte, head = model.transformer.wte.weight.clone(), model.lm_head.weight.clone()
        resize_vocab(model, 13)
        assert torch.equal(model.transformer.wte.weight[:10], wte)
        assert torch.equal(model.lm_head.weight[:10], head)
        assert torch.allclose(model.transformer.wte.weight[12], wte.mean(0))
        assert torch.equal(model(x)[0][..., :10], before)
        assert (
            model.config.vocab_size == 13
            and (model.lm_head.weight is model.transformer.wte.weight) == tie
        )


def tiny_chat_dataset(tmp_path, n=12):
    records = [{"instruction": f"say {w}", "output": f"{w}!"} for w in "abcdefghijklmnop"[:n]]
    return prepare_chat_dataset(
        [write_jsonl(tmp_path / "c.jsonl", records)], tmp_path / "ds", quiet=True, val_fraction=0.25
    )


def test_loss_ignores_every_prompt_token(tmp_path):
    data = ChatDataset(tiny_chat_dataset(tmp_path), "pack")
    torch.manual_seed(0)
    model = GPT(
        ModelConfig(n_layer=1, n_head=2, n_embd=16, block_size=32, vocab_size=data.data.vocab_size)
    )
    x, y, seg = data.get_batch("train", 4, 32, np.random.default_rng(0))
    logits, loss = model(x, y, segments=seg)
    kept = y != IGNORE
    manual = torch.nn.functional.cross_entropy(logits[kept], y[kept])
    assert torch.allclose(loss, manual)
    # A prompt token's target, changed: the loss does not move. A reply's target: it does.
    ids, mask = data.splits["train"].conversation(0)
    prompt_pos = int(np.flatnonzero(~mask[1:])[1])
    reply_pos = int(np.flatnonzero(mask[1:])[0])
    x1, y1 = pad_rows([(ids, mask)], 32)
    changed = ids.copy()
    changed[prompt_pos + 1] = (changed[prompt_pos + 1] + 1) % data.data.vocab_size
    _, y2 = pad_rows([(np.concatenate([ids[:1], changed[1:]]), mask)], 32)
    assert torch.equal(model(x1, y1)[1], model(x1, y2)[1])
    y3 = y1.clone()
    y3[0, reply_pos] = (y3[0, reply_pos] + 1) % data.data.vocab_size
    assert not torch.equal(model(x1, y1)[1], model(x1, y3)[1])


@pytest.mark.parametrize("pos", ["learned", "rope"])
def test_a_packed_row_trains_exactly_like_its_conversations_alone(tmp_path, pos):
    data = ChatDataset(tiny_chat_dataset(tmp_path))
    split = data.splits["train"]
    torch.manual_seed(0)
    model = GPT(
        ModelConfig(
            n_layer=2, n_head=2, n_embd=16, block_size=64, vocab_size=data.data.vocab_size, pos=pos
        )
    )
    x, y, seg = pack_rows(split, np.array([0]), 64)
    logits, _ = model(x, y, segments=seg)
    start = 0
    for k in range(int(seg.max())):
        ids, _ = split.conversation(k)
        n = min(len(ids) - 1, 64 - start)
        if n <= 0:
            break
        alone = model(torch.from_numpy(ids[None, : n + 0]))[0]
        assert torch.allclose(logits[0, start : start + n], alone[0, :n], atol=1e-5)
        start += len(ids)


def test_bpe_chat_dataset_reserves_the_turn_tokens(tmp_path):
    records = [
        {"instruction": f"question {i} about Bakı", "output": f"answer {i}"} for i in range(30)
    ]
    out = prepare_chat_dataset(
        [write_jsonl(tmp_path / "c.jsonl", records)], tmp_path / "ds", tokenizer="bpe",
        vocab_size=300, quiet=True,
    )  # fmt: skip
    tok = load_tokenizer(out)
    assert tok.kind == "bpe" and tok.vocab_size == 300 and tok.chat_template == DEFAULT_TEMPLATE
    assert tok.special_tokens == {
        "<|endoftext|>": 0,
        **{t: i + 1 for i, t in enumerate(CHAT_TOKENS)},
    }
    ids, mask = ChatDataset(out).splits["train"].conversation(0)
    assert tok.decode(ids[mask == 1].tolist()).endswith("<|end|>")
