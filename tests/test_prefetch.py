import pytest
import torch

from minigpt.data.prefetch import BatchPrefetcher


def make(step, micro):
    return torch.tensor([step]), torch.tensor([micro])


def test_batches_come_in_order_and_restart_anywhere():
    p = BatchPrefetcher(make, grad_accum=2, device=torch.device("cpu"))
    got = [(int(x), int(y)) for s in range(3) for m in range(2) for x, y in [p.get(s, m)]]
    assert got == [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1)]
    x, y = p.get(7, 0)  # a jump (e.g. after a skipped step) restarts the worker
    assert (int(x), int(y)) == (7, 0)
    assert [int(t) for t in p.get(7, 1)] == [7, 1]
    p.close()
    assert p.thread is None


def test_worker_errors_reach_the_caller():
    def failing(step, micro):
        raise ValueError("bad shard")

    p = BatchPrefetcher(failing, grad_accum=1, device=torch.device("cpu"))
    with pytest.raises(ValueError, match="bad shard"):
        p.get(0, 0)
    p.close()
