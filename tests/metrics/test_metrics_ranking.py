"""Window-level ranking metrics: hand-computed values, agreement with scikit-learn, edge cases, errors."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import log_loss, ndcg_score, roc_auc_score

from t4r_dmt.metrics import RANKING_METRICS, higher_is_better, is_known_metric
from t4r_dmt.metrics.ranking import auc, gauc, logloss, ndcg_at_k, ranking_metrics, recall_at_k

LOG2_3 = math.log2(3)


# ------------------------------------------------------------------------------------------ AUC
def test_auc_hand_computed() -> None:
    # positives 0.9, 0.4; negatives 0.8, 0.1: pairs (0.9>0.8) (0.9>0.1) (0.4<0.8) (0.4>0.1) -> 3/4
    assert auc([1, 0, 1, 0], [0.9, 0.8, 0.4, 0.1]) == pytest.approx(0.75)


def test_auc_tie_counts_half() -> None:
    # positives 0.5, 0.9; negatives 0.5, 0.1: (0.5=0.5 -> 1/2) + 1 + 1 + 1 = 3.5 of 4 pairs
    assert auc([1, 0, 1, 0], [0.5, 0.5, 0.9, 0.1]) == pytest.approx(0.875)


def test_auc_single_class_is_nan() -> None:
    assert math.isnan(auc([1, 1, 1], [0.1, 0.2, 0.3]))
    assert math.isnan(auc([], []))


def test_auc_agrees_with_sklearn() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random(2000) < 0.2).astype(np.int8)
    s = np.round(rng.random(2000), 2)  # many ties
    assert auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


# ----------------------------------------------------------------------------------------- GAUC
def test_gauc_hand_computed() -> None:
    labels = [1, 0, 0, 1, 0, 1, 1, 0]
    scores = [0.9, 0.5, 0.95, 0.2, 0.1, 0.3, 0.4, 0.7]
    users = ["a", "a", "a", "b", "b", "c", "c", "d"]
    # a: positive 0.9 beats 0.5, loses to 0.95 -> AUC 1/2, 3 impressions
    # b: positive 0.2 beats 0.1 -> AUC 1, 2 impressions
    # c: positives only, d: negative only -> skipped
    # GAUC = (3 * 0.5 + 2 * 1) / (3 + 2) = 0.7
    assert gauc(labels, scores, users) == pytest.approx(0.7)


def test_gauc_agrees_with_per_user_sklearn_and_row_order() -> None:
    rng = np.random.default_rng(1)
    n = 3000
    y = (rng.random(n) < 0.3).astype(np.int64)
    s = np.round(rng.random(n), 2)
    u = rng.integers(0, 200, n)
    num = den = 0.0
    for user in np.unique(u):
        mask = u == user
        if 0 < y[mask].sum() < mask.sum():
            num += mask.sum() * roc_auc_score(y[mask], s[mask])
            den += mask.sum()
    assert gauc(y, s, u) == pytest.approx(num / den, abs=1e-12)
    perm = rng.permutation(n)
    assert gauc(y[perm], s[perm], u[perm]) == pytest.approx(num / den, abs=1e-12)


def test_gauc_without_mixed_user_is_nan() -> None:
    assert math.isnan(gauc([1, 0], [0.3, 0.2], [1, 2]))
    assert math.isnan(gauc([], [], []))


# -------------------------------------------------------------------------------------- logloss
def test_logloss_hand_computed() -> None:
    # -(ln 0.8 + ln(1 - 0.4)) / 2 = (0.2231435513 + 0.5108256238) / 2
    assert logloss([1, 0], [0.8, 0.4]) == pytest.approx(0.3669845876)


def test_logloss_clips_with_eps() -> None:
    # p = 0 clipped to 1e-7: -ln(1e-7) = 7 ln 10 = 16.1180956510
    assert logloss([1], [0.0], eps=1e-7) == pytest.approx(16.1180956510)
    assert math.isnan(logloss([], []))


def test_logloss_agrees_with_sklearn() -> None:
    rng = np.random.default_rng(2)
    y = (rng.random(1000) < 0.4).astype(np.int64)
    p = rng.uniform(0.01, 0.99, 1000)
    assert logloss(y, p) == pytest.approx(log_loss(y, p, labels=[0, 1]), abs=1e-12)


# ----------------------------------------------------------------------------------- NDCG / recall
REL = [0, 2, 0, 1, 0, 0, 1, 0]
SCORES = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.1]
REQUESTS = [1, 1, 1, 1, 2, 2, 3, 3]


def test_ndcg_hand_computed() -> None:
    # request 1 ranks relevance [0, 2, 0, 1]; k=3:
    #   DCG = 2 / log2(3) = 1.2618595; IDCG = 2 / log2(2) + 1 / log2(3) = 2.6309298; NDCG = 0.4796249
    # request 2 has no relevant item: skipped. request 3 ranks [1, 0]: NDCG = 1.
    request_1 = (2 / LOG2_3) / (2 + 1 / LOG2_3)
    assert request_1 == pytest.approx(0.4796249, abs=1e-7)
    assert ndcg_at_k(REL, SCORES, REQUESTS, k=3) == pytest.approx((request_1 + 1.0) / 2)


def test_recall_hand_computed() -> None:
    # request 1, k=2: relevant items at ranks 2 and 4, top 2 holds one -> 1/2; request 3 -> 1/1
    assert recall_at_k(REL, SCORES, REQUESTS, k=2) == pytest.approx(0.75)


def test_ties_are_expected_over_random_order() -> None:
    # four tied items, one relevant: each rank with probability 1/4
    rel, scores, requests = [1, 0, 0, 0], [0.5] * 4, [7] * 4
    assert recall_at_k(rel, scores, requests, k=1) == pytest.approx(0.25)
    assert ndcg_at_k(rel, scores, requests, k=1) == pytest.approx(0.25)
    # k=2: (1 + 1 / log2(3)) / 4; IDCG@2 = 1
    assert ndcg_at_k(rel, scores, requests, k=2) == pytest.approx((1 + 1 / LOG2_3) / 4)
    # the row order does not matter (a constant scorer earns nothing from the log's order)
    assert recall_at_k([0, 0, 0, 1], scores, requests, k=1) == pytest.approx(0.25)


def test_k_larger_than_list() -> None:
    assert recall_at_k(REL, SCORES, REQUESTS, k=100) == pytest.approx(1.0)
    full = ndcg_at_k(REL, SCORES, REQUESTS, k=4)
    assert ndcg_at_k(REL, SCORES, REQUESTS, k=100) == pytest.approx(full)


def test_no_relevant_item_anywhere_is_nan() -> None:
    assert math.isnan(ndcg_at_k([0, 0], [0.1, 0.2], [1, 1]))
    assert math.isnan(recall_at_k([0, 0], [0.1, 0.2], [1, 1]))
    assert math.isnan(ndcg_at_k([], [], []))


def test_ndcg_and_recall_agree_with_sklearn_on_random_requests() -> None:
    rng = np.random.default_rng(3)
    n_requests, length = 400, 9
    rel = rng.integers(0, 3, size=(n_requests, length)) * (rng.random((n_requests, length)) < 0.3)
    scores = np.round(rng.random((n_requests, length)), 1)  # ties within requests
    requests = np.repeat(rng.permutation(10**6)[:n_requests], length)
    perm = rng.permutation(rel.size)
    keep = rel.sum(axis=1) > 0
    for k in (1, 3, 10):
        expected = ndcg_score(rel[keep], scores[keep], k=k)
        got = ndcg_at_k(rel.ravel()[perm], scores.ravel()[perm], requests[perm], k=k)
        assert got == pytest.approx(expected, abs=1e-12)
    # recall without ties, against a plain per-request loop
    scores = rng.random((n_requests, length))
    expected_recall = np.mean([
        (rel[i][np.argsort(-scores[i])[:3]] > 0).sum() / (rel[i] > 0).sum() for i in np.flatnonzero(keep)
    ])
    assert recall_at_k(rel.ravel(), scores.ravel(), requests, k=3) == pytest.approx(expected_recall, abs=1e-12)


# ------------------------------------------------------------------------------------ the frame
def _frame() -> pd.DataFrame:
    return pd.DataFrame({
        "request_id": [10, 10, 10, 11, 11],
        "user_id": [1, 1, 1, 2, 2],
        "click": np.array([1, 1, 0, 0, 1], dtype=np.int8),
        "order": np.array([0, 1, 0, 0, 0], dtype=np.int8),
        "p_click": [0.9, 0.6, 0.3, 0.7, 0.2],
        "p_order": [0.2, 0.1, 0.05, 0.3, 0.01],
        "score": [0.9, 0.8, 0.1, 0.5, 0.4],
    })


def test_ranking_metrics_values_and_names() -> None:
    frame = _frame()
    got = ranking_metrics(frame)
    assert list(got) == list(RANKING_METRICS)
    # request 10: clicked-only item first (gain 1), ordered item second (gain 2):
    #   DCG = 1 + 2 / log2(3); IDCG = 2 + 1 / log2(3). request 11: the clicked item is second of two:
    #   DCG = 1 / log2(3), IDCG = 1. Mean of the two requests.
    expected_ndcg = ((1 + 2 / LOG2_3) / (2 + 1 / LOG2_3) + 1 / LOG2_3) / 2
    assert got["ndcg@10"] == pytest.approx(expected_ndcg)
    assert got["recall@10"] == pytest.approx(1.0)
    # click AUC: positives 0.9, 0.6, 0.2 vs negatives 0.3, 0.7 -> (1+1)+(1+0)+(0+0) = 3 of 6
    assert got["auc_click"] == pytest.approx(0.5)
    # order AUC: positive 0.1 vs negatives 0.2, 0.05, 0.3, 0.01 -> 2 of 4
    assert got["auc_order"] == pytest.approx(0.5)
    # user 1 clicks: positives 0.9, 0.6 beat 0.3 -> 1; user 2: positive 0.2 < 0.7 -> 0; (3*1 + 2*0) / 5
    assert got["gauc_click"] == pytest.approx(0.6)
    # only user 1 has both order classes: positive 0.1 vs 0.2 and 0.05 -> 1/2
    assert got["gauc_order"] == pytest.approx(0.5)
    assert got["logloss_click"] == pytest.approx(logloss(frame["click"], frame["p_click"]))
    assert got["logloss_order"] == pytest.approx(logloss(frame["order"], frame["p_order"]))
    assert set(ranking_metrics(frame, k=1)) >= {"ndcg@1", "recall@1"}


def test_ranking_metrics_missing_column() -> None:
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['score'\]"):
        ranking_metrics(_frame().drop(columns="score"))


def test_ranking_metrics_names_the_bad_column() -> None:
    frame = _frame()
    frame.loc[0, "p_order"] = 1.5
    with pytest.raises(ValueError, match=r"p_order must be probabilities in \[0, 1\], got 1.5 at index 0"):
        ranking_metrics(frame)


# ---------------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: auc([1, 0], [0.1]), r"length mismatch: labels=2, scores=1"),
        (lambda: gauc([1, 0], [0.1, 0.2], [1]), r"length mismatch: .*user_ids=1"),
        (lambda: logloss([1, 0, 1], [0.1, 0.2]), r"length mismatch: labels=3, probs=2"),
        (lambda: ndcg_at_k([1], [0.1, 0.2], [1, 1]), r"length mismatch: relevance=1, scores=2"),
        (lambda: auc([1, 2], [0.1, 0.2]), r"labels must be binary 0/1, got 2 at index 1"),
        (lambda: gauc([0.5, 1], [0.1, 0.2], [1, 1]), r"labels must be binary 0/1, got 0.5"),
        (lambda: auc(["a", "b"], [0.1, 0.2]), r"labels must be numeric 0/1 labels"),
        (lambda: logloss([1, 0], [1.2, 0.2]), r"probs must be probabilities in \[0, 1\], got 1.2 at index 0"),
        (lambda: logloss([1, 0], [-0.1, 0.2]), r"probs must be probabilities in \[0, 1\]"),
        (lambda: logloss([1, 0], [0.5, 0.2], eps=0.0), r"eps must be in \(0, 0.5\)"),
        (lambda: auc([1, 0], [np.nan, 0.2]), r"scores must be finite, got nan at index 0"),
        (lambda: recall_at_k([-1, 0], [0.1, 0.2], [1, 1]), r"relevance must be >= 0, got -1.0 at index 0"),
        (lambda: ndcg_at_k([1, 0], [0.1, 0.2], [1, 1], k=0), r"k must be a positive integer, got 0"),
        (lambda: recall_at_k([1, 0], [0.1, 0.2], [1, 1], k=2.5), r"k must be a positive integer, got 2.5"),
        (lambda: auc([[1, 0]], [[0.1, 0.2]]), r"labels must be a 1-D array, got shape \(1, 2\)"),
        (lambda: gauc([1, 0], [0.1, 0.2], np.array(["u", None], dtype=object)),
         r"user_ids must not hold nulls, got None at index 1"),
        (lambda: recall_at_k([1, 0], [0.1, 0.2], [1.0, np.nan]), r"request_ids must not hold nulls, got nan at index 1"),
    ],
)
def test_input_validation(call, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=message):
        call()


def test_metric_names() -> None:
    assert is_known_metric("ndcg@10", "ranking") and is_known_metric("gauc_order", "ranking")
    assert is_known_metric("mrr@20", "next-item") and not is_known_metric("mrr@20", "ranking")
    assert not is_known_metric("auc_click", "next-item") and not is_known_metric("ndcg@0", "ranking")
    assert not higher_is_better("logloss_click") and higher_is_better("auc_click")
    with pytest.raises(ValueError, match=r"unknown task 'rank'; choose one of ranking, next-item"):
        is_known_metric("auc_click", "rank")
