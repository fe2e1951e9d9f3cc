"""Continuous batching: per-slot KV cache and the engine against one-at-a-time generation."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from minigpt.config import ModelConfig
from minigpt.config.sampling import SampleConfig
from minigpt.inference.batching import BatchEngine, QueueFull, Request
from minigpt.inference.generate import generate_text, prompt_ids
from minigpt.interop.loader import load_model
from minigpt.model import GPT
from minigpt.model.slot_cache import SlotKVCache
from tests.serve_helpers import train_chat_ready_run


@pytest.mark.parametrize("pos", ["learned", "rope"])
def test_slot_cache_rows_at_different_lengths_match_full_forward(pos):
    torch.manual_seed(0)
    config = ModelConfig(n_layer=2, n_head=2, n_embd=32, block_size=24, vocab_size=40, pos=pos)
    model = GPT(config).eval()
    seqs = [torch.randint(0, 40, (1, n)) for n in (6, 11, 3)]
    cache = SlotKVCache(4, 2, 2, 16, 24)
    for slot, seq in enumerate(seqs):
        view = cache.slot_view(slot)
        model(seq[:, :-1], kv_cache=view)
        cache.set_length(slot, view.pos)
    order = [2, 0, 1]  # any subset of slots, in any order
    cache.use(order)
    last = torch.cat([seqs[s][:, -1:] for s in order])
    batched, _ = model(last, kv_cache=cache, last_only=True)
    for row, slot in enumerate(order):
        full, _ = model(seqs[slot])
        torch.testing.assert_close(batched[row, -1], full[0, -1], rtol=1e-5, atol=1e-5)
    assert [cache.lengths[s] for s in range(3)] == [6, 11, 3]
    cache.move(1, 0)  # packing: slot 1's keys now answer for slot 0
    cache.use([0])
    moved, _ = model(torch.tensor([[5]]), kv_cache=cache, last_only=True)
    full, _ = model(torch.cat([seqs[1], torch.tensor([[5]])], dim=1))
    torch.testing.assert_close(moved[0, -1], full[0, -1], rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def loaded():
    model, tokenizer = load_model(train_chat_ready_run(), device="cpu")
    return model, tokenizer


def test_engine_answers_concurrent_requests_like_generate_text(loaded):
    model, tokenizer = loaded
    prompts = ["To be", "Whether", "The", "Or to take", "And"]
    lengths = [50, 7, 33, 20, 41]  # they finish at different steps; some slide past the block
    expected = [
        generate_text(model, tokenizer, p, max_new_tokens=n, temperature=0)[len(p) :]
        for p, n in zip(prompts, lengths, strict=True)
    ]
    engine = BatchEngine(model, tokenizer, max_batch=3).start()  # fewer slots than requests
    got: list[str | None] = [None] * len(prompts)

    def ask(i: int) -> None:
        config = SampleConfig(max_new_tokens=lengths[i], temperature=0)
        events = engine.generate(prompt_ids(tokenizer, prompts[i]), config)
        assert events[-1].finish == "length" and events[-1].completion_tokens == lengths[i]
        got[i] = "".join(e.text for e in events)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(prompts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    engine.stop()
    assert got == expected


def test_engine_cancel_frees_the_slot_and_queue_limit(loaded):
    model, tokenizer = loaded
    engine = BatchEngine(model, tokenizer, max_batch=1, max_queue=1)  # not started: all wait
    ids = prompt_ids(tokenizer, "To be")
    seen: list = []
    first = engine.submit(Request(ids, SampleConfig(max_new_tokens=10_000), seen.append))
    with pytest.raises(QueueFull):
        engine.submit(Request(ids, SampleConfig(max_new_tokens=5), seen.append))
    engine.cancel(first)
    assert engine.queue_depth == 0
    engine.start()
    events = engine.generate(ids, SampleConfig(max_new_tokens=0))
    assert [e.finish for e in events] == ["length"]
    engine.stop()
    assert seen == []  # a request cancelled while waiting never ran


def test_engine_penalties_and_logprobs(loaded):
    model, tokenizer = loaded
    engine = BatchEngine(model, tokenizer).start()
    ids = prompt_ids(tokenizer, "To be")
    greedy = engine.generate(ids, SampleConfig(max_new_tokens=30, temperature=0), logprobs=1)
    assert all(e.top_logprobs[0][0] == e.token_id for e in greedy)
    plain = "".join(e.text for e in greedy)
    penalised = engine.generate(
        ids, SampleConfig(max_new_tokens=30, temperature=0), frequency_penalty=2.0
    )
    engine.stop()
    text = "".join(e.text for e in penalised)
    assert text != plain
    assert max(text.count(c) for c in set(text)) <= max(plain.count(c) for c in set(plain))


def test_prompts_that_arrive_together_are_prefilled_as_one_batch(loaded):
    model, tokenizer = loaded
    prompts = ["To be", "Or to", "To di"]  # the same length: one batched prefill
    expected = [
        generate_text(model, tokenizer, p, max_new_tokens=12, temperature=0)[len(p) :]
        for p in prompts
    ]
    engine = BatchEngine(model, tokenizer, max_batch=4)  # not started: all three wait
    events: list[list] = [[], [], []]
    for i, p in enumerate(prompts):
        config = SampleConfig(max_new_tokens=12, temperature=0)
        engine.submit(Request(prompt_ids(tokenizer, p), config, events[i].append))
    calls = []
    original = engine._prefill_new
    engine._prefill_new = lambda slots: calls.append(list(slots)) or original(slots)
    engine.start()
    while not all(e and e[-1].finish for e in events):
        time.sleep(0.01)
    engine.stop()
    assert calls[0] == [0, 1, 2]
    assert ["".join(e.text for e in ev) for ev in events] == expected
