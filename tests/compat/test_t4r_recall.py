"""The fix of T4R 23.12's ``RecallAt`` (crash on a batch with one relevant row), in t4r_dmt.compat."""

from __future__ import annotations

import pytest
import torch

ranking_metric = pytest.importorskip("transformers4rec.torch.ranking_metric")

from t4r_dmt.compat import t4r_recall  # noqa: E402
from t4r_dmt.compat.t4r_recall import RecallAt, apply_ranking_metric_fix  # noqa: E402
from t4r_dmt.metrics.next_item import next_item_task_metrics  # noqa: E402

# One relevant row out of three (multi-hot labels): the case that crashes T4R.
SCORES_3 = torch.tensor([[0.1, 0.2, 0.3, 0.4], [0.9, 0.1, 0.8, 0.3], [0.4, 0.3, 0.2, 0.1]])
LABELS_3 = torch.tensor([[0.0, 0, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0]])


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
