"""The T4R RecallAt fix and the window-level next-item metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

ranking_metric = pytest.importorskip("transformers4rec.torch.ranking_metric")

from t4r_dmt.compat import t4r_recall  # noqa: E402
from t4r_dmt.metrics.next_item import (  # noqa: E402
    RecallAt,
    apply_ranking_metric_fix,
    metrics_from_ranks,
    next_item_metrics,
    next_item_task_metrics,
    target_ranks,
)

LOG2_3 = math.log2(3)

# One relevant row out of three (multi-hot labels): the case that crashes T4R.
SCORES_3 = torch.tensor([[0.1, 0.2, 0.3, 0.4], [0.9, 0.1, 0.8, 0.3], [0.4, 0.3, 0.2, 0.1]])
LABELS_3 = torch.tensor([[0.0, 0, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0]])


# ------------------------------------------------------------------------------------ the bug fix
def test_original_recall_crashes_on_one_relevant_row() -> None:
    # Documents the upstream bug; if T4R fixes it this test fails and the fix can go.
    original = ranking_metric.RecallAt(top_ks=[2])
    with pytest.raises(IndexError):
        t4r_recall._ORIGINAL_RECALL_METRIC(original, [2, 4], SCORES_3, LABELS_3)


def test_fixed_recall_one_relevant_row_hand_computed() -> None:
    # row 1 ranks items 0, 2, 3, 1; relevant items 1 and 2: top 2 holds item 2 -> 1/2; top 4 -> 2/2.
    # rows 0 and 2 have no relevant item -> 0.
    got = RecallAt(top_ks=[2, 4])._metric([2, 4], SCORES_3, LABELS_3)
    assert torch.allclose(got, torch.tensor([[0.0, 0.0], [0.5, 1.0], [0.0, 0.0]]))


def test_fixed_recall_batch_of_one_prediction() -> None:
    # integer target 2 scored 0.3: ranked third after items 1 (0.9) and 3 (0.5)
    metric = RecallAt(top_ks=[2, 3], labels_onehot=True)
    metric.update(torch.tensor([[0.1, 0.9, 0.3, 0.5]]), torch.tensor([2]))
    assert torch.allclose(metric.compute(), torch.tensor([0.0, 1.0]))


def test_fixed_recall_agrees_with_original_on_normal_batches() -> None:
    generator = torch.Generator().manual_seed(0)
    scores = torch.rand(16, 30, generator=generator)
    labels = (torch.rand(16, 30, generator=generator) < 0.1).float()
    labels[3] = 0  # a row without relevant items
    metric = ranking_metric.RecallAt(top_ks=[5, 10])
    expected = t4r_recall._ORIGINAL_RECALL_METRIC(metric, [5, 10], scores, labels)
    assert torch.equal(RecallAt(top_ks=[5, 10])._metric([5, 10], scores, labels), expected)


def test_apply_fix_is_idempotent_and_fixes_existing_instances(monkeypatch: pytest.MonkeyPatch) -> None:
    # monkeypatch restores T4R's method after the test
    monkeypatch.setattr(ranking_metric.RecallAt, "_metric", t4r_recall._ORIGINAL_RECALL_METRIC)
    existing = ranking_metric.RecallAt(top_ks=[2, 4])
    apply_ranking_metric_fix()
    apply_ranking_metric_fix()
    assert ranking_metric.RecallAt._metric is t4r_recall._fixed_recall_metric
    assert torch.allclose(existing._metric([2, 4], SCORES_3, LABELS_3)[1], torch.tensor([0.5, 1.0]))


def test_task_metrics_keep_t4r_names() -> None:
    metrics = next_item_task_metrics((10, 20))
    assert [type(m).__name__ for m in metrics] == ["NDCGAt", "AvgPrecisionAt", "RecallAt", "MeanReciprocalRankAt"]
    assert isinstance(metrics[2], RecallAt) and all(m.labels_onehot and m.top_ks == [10, 20] for m in metrics)


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
