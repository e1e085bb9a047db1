"""The CPU speed-ups of the DMT blocks: same values and gradients, cheaper work."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch import nn

from t4r_dmt.model import TransformerConfig
from t4r_dmt.model.buckets import length_buckets
from t4r_dmt.model.dropout import BitsDropout, swap_dropouts
from t4r_dmt.model.encoders import SequenceEncoder


def _cost(lengths: np.ndarray, sizes: list[int], call_cost: float) -> float:
    bounds = np.cumsum([0, *sizes])
    return sum(call_cost + (b - a) * float(lengths[b - 1]) for a, b in itertools.pairwise(bounds)
               if lengths[b - 1] > 0)


def _brute_force(lengths: np.ndarray, call_cost: float) -> float:
    """The least cost over every partition of the non-empty rows into contiguous buckets."""
    rows = lengths[lengths > 0]
    best = float("inf")
    for cuts in itertools.product([False, True], repeat=max(len(rows) - 1, 0)):
        sizes, size = [], 1
        for cut in cuts:
            if cut:
                sizes.append(size)
                size = 0
            size += 1
        best = min(best, _cost(rows, [*sizes, size], call_cost))
    return best


@pytest.mark.parametrize("call_cost", [0.0, 3.0, 10.0, 1000.0])
def test_length_buckets_find_the_cheapest_partition(call_cost: float) -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        lengths = np.sort(rng.integers(0, 12, size=rng.integers(1, 11)))
        sizes = length_buckets(lengths, call_cost)
        assert sum(sizes) == len(lengths)
        n_empty = int((lengths == 0).sum())
        if n_empty:
            assert sizes[0] == n_empty  # the rows without events form their own bucket
        assert _cost(lengths, sizes, call_cost) == pytest.approx(_brute_force(lengths, call_cost))


def test_length_buckets_values() -> None:
    lengths = np.array([0, 0, 1, 1, 2, 50])
    assert length_buckets(lengths, 0.0) == [2, 2, 1, 1]  # free calls: one bucket per length
    assert length_buckets(lengths, 1e6) == [2, 4]  # dear calls: one bucket for all rows with events
    assert length_buckets(lengths, 10.0) == [2, 3, 1]  # padding 1 and 2 to 50 costs more than a call
    assert length_buckets(np.array([0, 0]), 5.0) == [2]
    assert length_buckets(np.array([], dtype=np.int64), 5.0) == []


@pytest.mark.parametrize("lengths, call_cost", [(np.array([2, 1]), 1.0), (np.array([[1, 2]]), 1.0),
                                                (np.array([-1, 2]), 1.0), (np.array([1, 2]), -1.0)])
def test_length_buckets_errors(lengths: np.ndarray, call_cost: float) -> None:
    with pytest.raises(ValueError, match="lengths must be|call_cost must be"):
        length_buckets(lengths, call_cost)


def test_bits_dropout_keeps_1_minus_p_and_scales() -> None:
    torch.manual_seed(0)
    drop = BitsDropout(0.1).train()
    x = torch.ones(400, 500)
    y = drop(x)
    kept = y != 0
    assert kept.float().mean().item() == pytest.approx(0.9, abs=0.003)
    torch.testing.assert_close(y[kept], torch.full_like(y[kept], 1 / 0.9))
    # the gradient passes through the kept elements only, scaled the same way
    x.requires_grad_(True)
    torch.manual_seed(1)
    out = drop(x)
    out.sum().backward()
    assert x.grad is not None
    torch.testing.assert_close(x.grad, (out != 0).float() / 0.9)
    # seeded: the same generator state gives the same mask
    torch.manual_seed(1)
    torch.testing.assert_close(drop(torch.ones(400, 500)), out.detach())


def test_bits_dropout_is_nn_dropout_where_it_does_not_apply() -> None:
    x = torch.randn(30, 7)
    assert torch.equal(BitsDropout(0.5).eval()(x), x)  # evaluation
    assert torch.equal(BitsDropout(0.0).train()(x), x)  # p = 0
    assert torch.equal(BitsDropout(1.0).train()(x), torch.zeros_like(x))  # p = 1
    inplace = BitsDropout(0.5, inplace=True).train()
    y = x.clone()
    assert inplace(y) is y and ((y == 0) | torch.isclose(y, 2 * x)).all()


def test_swap_dropouts_reaches_the_hf_encoder_and_keeps_p() -> None:
    cfg = TransformerConfig(d_model=8, d_ff=16, n_heads=2, n_layers=2, dropout=0.3)
    model = nn.Sequential(SequenceEncoder(cfg, 10), nn.Dropout(0.2))
    before = [m.p for m in model.modules() if isinstance(m, nn.Dropout)]
    assert swap_dropouts(model) == len(before) >= 7  # embeddings + 3 per BERT layer + ours
    after = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    assert all(type(m) is BitsDropout for m in after) and [m.p for m in after] == before
    assert swap_dropouts(model) == 0  # already swapped
