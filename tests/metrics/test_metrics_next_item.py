"""The T4R RecallAt fix and the window-level next-item metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

ranking_metric = pytest.importorskip("transformers4rec.torch.ranking_metric")

from t4r_dmt.metrics.next_item import (  # noqa: E402
    RecallAt,
    metrics_from_ranks,
    next_item_metrics,
    target_ranks,
)

LOG2_3 = math.log2(3)
# One relevant row out of three (multi-hot labels): the case that crashed T4R's RecallAt (tests/compat).
SCORES_3 = torch.tensor([[0.1, 0.2, 0.3, 0.4], [0.9, 0.1, 0.8, 0.3], [0.4, 0.3, 0.2, 0.1]])
LABELS_3 = torch.tensor([[0.0, 0, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0]])















# ------------------------------------------------------------------------------ window metrics
LOGITS = np.array([
    [0.1, 0.5, 0.3, 0.9, 0.2],  # target 2: 0.5 and 0.9 higher -> rank 3
    [0.0, 0.2, 0.2, 0.1, 0.0],  # target 2: tied with item 1, lower code first -> rank 2
    [0.9, 0.1, 0.2, 0.3, 0.4],  # target 1: four items higher -> rank 5
], dtype=np.float32)
TARGETS = np.array([2, 2, 1])
# k=3: NDCG = (1/log2(4) + 1/log2(3) + 0) / 3 = (0.5 + 0.6309298) / 3; recall = 2/3;
#      MRR = (1/3 + 1/2 + 0) / 3 = 0.2777778
EXPECTED_K3 = {"ndcg@3": (0.5 + 1 / LOG2_3) / 3, "recall@3": 2 / 3, "mrr@3": (1 / 3 + 1 / 2) / 3}


def test_ranks_from_logits_hand_computed() -> None:
    assert target_ranks(LOGITS, TARGETS).tolist() == [3, 2, 5]
    assert target_ranks(torch.from_numpy(LOGITS), torch.from_numpy(TARGETS)).tolist() == [3, 2, 5]


def test_metrics_from_logits_hand_computed() -> None:
    assert next_item_metrics(LOGITS, TARGETS, k=3) == pytest.approx(EXPECTED_K3)


def test_metrics_from_top_k_ids_hand_computed() -> None:
    top3 = np.array([[3, 1, 2], [1, 2, 3], [0, 4, 3]])  # row 2's target (1) is absent -> rank 4
    assert target_ranks(top3, TARGETS, k=3).tolist() == [3, 2, 4]
    assert next_item_metrics(top3, TARGETS, k=3) == pytest.approx(EXPECTED_K3)


def test_metrics_agree_with_t4r_on_a_batch() -> None:
    generator = torch.Generator().manual_seed(1)
    logits = torch.rand(64, 200, generator=generator)
    targets = torch.randint(0, 200, (64,), generator=generator)
    ours = next_item_metrics(logits, targets, k=20)
    top = torch.topk(logits, 20).indices
    assert next_item_metrics(top, targets, k=20) == pytest.approx(ours)
    for metric, name in [(ranking_metric.NDCGAt, "ndcg@20"), (RecallAt, "recall@20"),
                         (ranking_metric.MeanReciprocalRankAt, "mrr@20")]:
        t4r = metric(top_ks=[20], labels_onehot=True)
        t4r.update(logits, targets)
        assert float(t4r.compute()) == pytest.approx(ours[name], abs=1e-6), name


def test_metrics_from_ranks_over_a_window() -> None:
    # batches of ranks concatenated: rank 1 -> ndcg 1, mrr 1; rank 30 > k -> 0
    got = metrics_from_ranks(np.concatenate([np.array([1, 30]), np.array([3])]), k=20)
    assert got == pytest.approx({"ndcg@20": (1 + 0.5) / 3, "recall@20": 2 / 3, "mrr@20": (1 + 1 / 3) / 3})
    assert all(math.isnan(v) for v in metrics_from_ranks(np.array([], dtype=np.int64)).values())


@pytest.mark.parametrize(
    ("preds", "targets", "message"),
    [
        (LOGITS[0], TARGETS, r"must be 2-D"),
        (LOGITS, TARGETS[:2], r"length mismatch: scores_topk_or_logits has 3 rows, targets 2"),
        (LOGITS, TARGETS.astype(np.float32), r"targets must be a 1-D integer array"),
        (LOGITS, np.array([2, 2, 5]), r"targets must be item codes in \[0, 5\)"),
        (np.where(LOGITS > 0.8, np.nan, LOGITS), TARGETS, r"holds NaN scores"),
        (np.array([[1, 2], [0, 1], [3, 4]]), TARGETS, r"needs K >= k; got K=2, k=3"),
        (LOGITS > 0.5, TARGETS, r"got bool"),
        ([[0.1]], [0], r"must be a numpy array or a torch tensor, got list"),
    ],
)
def test_next_item_validation(preds, targets, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=message):
        next_item_metrics(preds, targets, k=3)


def test_ranks_validation() -> None:
    with pytest.raises(ValueError, match=r"integers >= 1"):
        metrics_from_ranks(np.array([0, 1]))
    with pytest.raises(ValueError, match=r"k must be a positive integer, got 0"):
        metrics_from_ranks(np.array([1]), k=0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_inputs_match_cpu() -> None:
    logits = torch.from_numpy(LOGITS).cuda()
    targets = torch.from_numpy(TARGETS).cuda()
    assert target_ranks(logits, targets).tolist() == [3, 2, 5]
    got = RecallAt(top_ks=[2, 4])._metric([2, 4], SCORES_3.cuda(), LABELS_3.cuda())
    assert torch.allclose(got.cpu(), torch.tensor([[0.0, 0.0], [0.5, 1.0], [0.0, 0.0]]))


def test_infinite_scores_rank_normally() -> None:
    masked = LOGITS.copy()
    masked[:, 0] = -np.inf  # e.g. the padding item masked out
    masked[1, 3] = np.inf
    assert target_ranks(masked, TARGETS).tolist() == [3, 3, 4]


def test_half_precision_scores() -> None:
    for dtype in (torch.float16, torch.bfloat16):
        assert target_ranks(torch.from_numpy(LOGITS).to(dtype), TARGETS).tolist() == [3, 2, 5]
