import math

import pytest
import torch

from minigpt.model.sampling import (
    apply_repetition_penalty,
    min_p_filter,
    sample_next,
    top_k_filter,
    top_p_filter,
)

INF = float("-inf")


def logits_of(probs):
    return torch.tensor([[math.log(p) for p in probs]])


def kept(logits):
    return torch.isfinite(logits)[0].tolist()


def test_top_k_keeps_the_k_highest():
    logits = torch.tensor([[1.0, 3.0, 2.0, 0.0]])
    assert top_k_filter(logits, 2).tolist() == [[INF, 3.0, 2.0, INF]]
    assert top_k_filter(logits, None) is logits
    assert top_k_filter(logits, 4) is logits


def test_top_p_keeps_the_smallest_set_reaching_p():
    # Shuffled, so the mask must be put back in vocabulary order.
    logits = logits_of([0.15, 0.5, 0.05, 0.3])
    assert kept(top_p_filter(logits, 0.7)) == [False, True, False, True]
    assert kept(top_p_filter(logits, 0.81)) == [True, True, False, True]
    assert kept(top_p_filter(logits, 0.4)) == [False, True, False, False]
    assert kept(top_p_filter(logits, 1e-9)) == [False, True, False, False]  # never empty
    assert top_p_filter(logits, 1.0) is logits


def test_min_p_scales_with_the_top_probability():
    logits = logits_of([0.15, 0.5, 0.05, 0.3])
    assert kept(min_p_filter(logits, 0.25)) == [True, True, False, True]  # >= 0.125
    assert kept(min_p_filter(logits, 0.5)) == [False, True, False, True]  # >= 0.25
    flat = logits_of([0.25, 0.25, 0.25, 0.25])
    assert kept(min_p_filter(flat, 0.9)) == [True] * 4
    assert min_p_filter(logits, 0.0) is logits


def test_repetition_penalty_divides_positive_and_multiplies_negative():
    logits = torch.tensor([[2.0, -1.0, 0.5, 3.0], [2.0, -1.0, 0.5, 3.0]])
    history = torch.tensor([[0, 1, 0], [3, 3, 3]])
    out = apply_repetition_penalty(logits, history, 2.0)
    assert out.tolist() == [[1.0, -2.0, 0.5, 3.0], [2.0, -1.0, 0.5, 1.5]]
    assert apply_repetition_penalty(logits, history, 1.0) is logits
    # In greedy decoding the penalty changes the pick: 3 was seen, so 0 wins.
    assert sample_next(logits, 0.0, history=history, repetition_penalty=2.0).tolist() == [
        [3],
        [0],
    ]


def test_temperature_zero_is_greedy():
    logits = torch.tensor([[0.1, 2.0, 1.9], [5.0, 0.0, -1.0]])
    assert sample_next(logits, 0.0).tolist() == [[1], [0]]


@pytest.mark.parametrize(
    ("options", "allowed"),
    [
        (dict(top_k=2), {1, 3}),
        (dict(top_p=0.7), {1, 3}),
        (dict(min_p=0.5), {1, 3}),
        (dict(top_k=3, top_p=0.6, min_p=0.1), {1, 3}),
    ],
)
def test_sampling_draws_only_kept_tokens(options, allowed):
    logits = logits_of([0.15, 0.5, 0.05, 0.3]).repeat(2000, 1)
    top_k = options.pop("top_k", None)
    gen = torch.Generator().manual_seed(0)
    draws = sample_next(logits, 1.0, top_k, gen, **options)
    assert set(draws.flatten().tolist()) == allowed


def test_seeded_draws_repeat():
    logits = torch.randn(4, 50, generator=torch.Generator().manual_seed(1))
    a = sample_next(logits, 1.0, None, torch.Generator().manual_seed(7), top_p=0.9)
    b = sample_next(logits, 1.0, None, torch.Generator().manual_seed(7), top_p=0.9)
    assert torch.equal(a, b)
