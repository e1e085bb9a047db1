"""Bias validation: the learned position curve against the planted one, NDCG against true relevance."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from t4r_dmt.analysis import (
    BiasValidation,
    comparison,
    fitted_curve,
    load_bias_curve,
    max_log_ratio,
    plot_bias_curves,
    position_curve,
    promoted_overrating,
    relevance_auc,
    relevance_ndcg,
    spearman,
)
from t4r_dmt.errors import InputError
from t4r_dmt.model.bias import BiasTower
from t4r_dmt.model.inputs import BiasBatch


class _MinusPosition(BiasTower):
    """A stand-in bias tower: logit = -position + 0.1 * category (so the mean over rows shifts it)."""

    def __init__(self) -> None:
        super().__init__(n_positions=20, n_pages=3, n_categories=8, embedding_dim=2, units=[], dropout=0.0)

    def forward(self, bias: BiasBatch, category: torch.Tensor) -> torch.Tensor:
        return -bias.position.float() + 0.1 * category.float()


def _rows() -> pd.DataFrame:
    return pd.DataFrame({"position_index": [1, 2, 11, 12], "position_page": [1, 1, 2, 2],
                         "item_category": [3, 5, 3, 5], "neighbor_category_seq": [[3, 4], [], None, [4] * 6]})


def test_position_curve_reads_the_tower_per_position() -> None:
    curve = position_curve(_MinusPosition(), _rows(), 4)
    np.testing.assert_allclose(curve, [-1 + 0.4, -2 + 0.4, -3 + 0.4, -4 + 0.4])
    assert spearman(curve, np.array([1.0, 0.6, 0.5, 0.4])) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="lacks column"):
        position_curve(_MinusPosition(), _rows().drop(columns=["position_page"]), 4)
    with pytest.raises(ValueError, match="at least one row"):
        position_curve(_MinusPosition(), _rows().iloc[:0], 4)


def test_spearman_values_and_errors() -> None:
    assert spearman(np.array([3.0, 2.0, 1.0]), np.array([1.0, 2.0, 3.0])) == pytest.approx(-1.0)
    assert np.isnan(spearman(np.zeros(3), np.array([1.0, 2.0, 3.0])))
    with pytest.raises(ValueError, match="one length"):
        spearman(np.zeros(3), np.zeros(4))


def test_load_bias_curve(tmp_path: Path) -> None:
    (tmp_path / "bias_curve.json").write_text(json.dumps({"position": [0, 1, 2], "bias": [1.0, 0.5, 0.2]}))
    np.testing.assert_allclose(load_bias_curve(tmp_path), [1.0, 0.5, 0.2])
    (tmp_path / "bias_curve.json").write_text(json.dumps({"position": [1, 2], "bias": [1.0, 0.5]}))
    with pytest.raises(InputError, match="positions must be 0, 1"):
        load_bias_curve(tmp_path)
    (tmp_path / "bias_curve.json").write_text(json.dumps({"position": [0]}))
    with pytest.raises(InputError, match="has no 'bias' list"):
        load_bias_curve(tmp_path)
    with pytest.raises(FileNotFoundError, match="truth/ folder"):
        load_bias_curve(tmp_path / "missing")


def test_relevance_ndcg_uses_the_planted_relevance() -> None:
    truth = pd.DataFrame({"request_id": [1, 1, 2, 2], "product_id": [10, 11, 10, 12],
                          "p_click_relevance": [0.9, 0.1, 0.0, 0.5]})
    perfect = truth.assign(score=truth["p_click_relevance"])[["request_id", "product_id", "score"]]
    assert relevance_ndcg(perfect, truth) == pytest.approx(1.0)
    reversed_ = perfect.assign(score=-perfect["score"])
    # request 1: gains (0.1, 0.9) at ranks 1, 2 -> (0.1 + 0.9 / log2 3) / (0.9 + 0.1 / log2 3); request 2 alike.
    r1 = (0.1 + 0.9 / np.log2(3)) / (0.9 + 0.1 / np.log2(3))
    r2 = (0.0 + 0.5 / np.log2(3)) / 0.5
    assert relevance_ndcg(reversed_, truth) == pytest.approx((r1 + r2) / 2)
    with pytest.raises(InputError, match="has no row for a scored impression"):
        relevance_ndcg(perfect.assign(product_id=99), truth)


def test_relevance_auc_is_the_expected_auc_over_relevance_clicks() -> None:
    truth = pd.DataFrame({"request_id": [1, 1, 2], "product_id": [10, 11, 10], "p_click_relevance": [0.8, 0.2, 0.5]})
    score = truth[["request_id", "product_id"]].assign(score=[3.0, 1.0, 2.0])
    # Positives weigh p, negatives 1 - p: a pair (i above j) is concordant with weight p_i (1 - p_j) and
    # discordant with p_j (1 - p_i); each row against its own negative copy is a tie, counted one half.
    p = np.array([0.8, 0.2, 0.5])
    above = [(0, 1), (0, 2), (2, 1)]  # (higher score, lower score)
    concordant = sum(p[i] * (1 - p[j]) for i, j in above)
    discordant = sum(p[j] * (1 - p[i]) for i, j in above)
    ties = sum(p * (1 - p))  # each row against its own negative copy: a tie, counted one half
    expected = (concordant + ties / 2) / (concordant + discordant + ties)
    assert relevance_auc(score, truth) == pytest.approx(expected)
    # A score ordered like the relevance reaches the oracle's own value; reversing it mirrors the pairs.
    oracle = relevance_auc(truth[["request_id", "product_id"]].assign(score=p), truth)
    assert relevance_auc(score, truth) == pytest.approx(oracle)
    reversed_ = relevance_auc(score.assign(score=-score["score"]), truth)
    assert reversed_ == pytest.approx((discordant + ties / 2) / (concordant + discordant + ties))
    assert reversed_ < 0.5 < oracle
    # The ground truth is the relevance, not a click column: a constant p has nothing to order.
    assert np.isnan(relevance_auc(score, truth.assign(p_click_relevance=1.0)))
    with pytest.raises(InputError, match="has no row for a scored impression"):
        relevance_auc(score.assign(product_id=99), truth)
    with pytest.raises(InputError, match="has no 'p_click_relevance' column"):
        relevance_auc(score, truth.drop(columns=["p_click_relevance"]))


def test_fitted_curve_recovers_a_planted_curve_and_shows_confounding() -> None:
    rng = np.random.default_rng(0)
    n, planted = 200_000, np.array([1.0, 0.6, 0.4, 0.3])
    position = rng.integers(0, 4, n)
    # Confounded: the lower the position, the less relevant the item (as a relevance-ordered policy does).
    relevance = np.clip(rng.uniform(0.1, 0.6, n) - 0.08 * position, 0.01, 1.0)
    click = (rng.random(n) < planted[position] * relevance).astype(np.float64)
    fitted = fitted_curve(click, relevance, position, 4)
    assert max_log_ratio(fitted, planted) < 0.05  # the true relevance: only sampling noise is left
    # A relevance estimate blind to what made the position (its mean only) pushes that into the curve: steeper.
    blind = fitted_curve(click, np.full(n, relevance.mean()), position, 4)
    assert max_log_ratio(blind, planted) > 0.3 and (blind - blind[0])[3] < np.log(planted[3])
    # One position by hand: every row q = 0.5, clicks 1 of 4 -> e = (1/4) / 0.5.
    np.testing.assert_allclose(fitted_curve(np.array([1, 0, 0, 0]), np.full(4, 0.5), np.zeros(4, int), 2),
                               [np.log(0.5), np.nan], atol=1e-5)


def test_fitted_curve_errors() -> None:
    ones = np.ones(3)
    with pytest.raises(ValueError, match="one length"):
        fitted_curve(ones, ones[:2], np.zeros(3, int), 2)
    with pytest.raises(ValueError, match="click must be 0 or 1"):
        fitted_curve(np.array([0.0, 2.0, 1.0]), ones / 2, np.zeros(3, int), 2)
    with pytest.raises(ValueError, match="probabilities in"):
        fitted_curve(ones, np.array([0.5, 1.5, 0.5]), np.zeros(3, int), 2)
    with pytest.raises(ValueError, match="0-based"):
        fitted_curve(ones, ones / 2, np.array([0, -1, 0]), 2)
    with pytest.raises(ValueError, match="n_positions must be >= 1"):
        fitted_curve(ones, ones / 2, np.zeros(3, int), 0)


class _ExaminationTower(_MinusPosition):
    """A tower with ``examination_log``: the curve reads it, not the logit."""

    def examination_log(self, bias: BiasBatch, category: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.logsigmoid(-bias.position.float())


def test_position_curve_reads_examination_log_where_the_tower_has_it() -> None:
    curve = position_curve(_ExaminationTower(), _rows(), 3)
    np.testing.assert_allclose(curve, np.log(1 / (1 + np.exp([1.0, 2.0, 3.0]))), rtol=1e-6)


def test_max_log_ratio_by_hand() -> None:
    planted = np.array([1.0, 0.5, 0.25])
    assert max_log_ratio(np.log(planted) + 3.0, planted) == pytest.approx(0.0, abs=1e-12)
    # aligned learned (0, -1, -1) against log planted (0, -ln 2, -2 ln 2): errors 0, 1 - ln 2, 2 ln 2 - 1.
    assert max_log_ratio(np.array([2.0, 1.0, 1.0]), planted) == pytest.approx(2 * np.log(2) - 1)
    assert max_log_ratio(np.array([0.0, -1.0, -5.0]), planted) == pytest.approx(5 - 2 * np.log(2))
    assert np.isnan(max_log_ratio(np.full(3, np.nan), planted))
    with pytest.raises(ValueError, match="one length"):
        max_log_ratio(np.zeros(2), planted)
    with pytest.raises(ValueError, match="must be > 0 everywhere"):
        max_log_ratio(np.zeros(3), np.array([1.0, 0.0, 0.5]))


def _promotion_truth() -> pd.DataFrame:
    """Request 1: the promoted item 10 is the least relevant; request 2: the promoted item 20 is the most
    relevant; request 3 has no promoted item (left out of the mean)."""
    return pd.DataFrame({"request_id": [1, 1, 1, 2, 2, 3, 3], "product_id": [10, 11, 12, 20, 21, 30, 31],
                         "p_click_relevance": [0.1, 0.9, 0.5, 0.8, 0.2, 0.3, 0.6],
                         "promoted": [True, False, False, True, False, False, False]})


def _scores(truth: pd.DataFrame, score: np.ndarray) -> pd.DataFrame:
    return truth[["request_id", "product_id"]].assign(score=score)


def test_promoted_overrating_by_hand() -> None:
    truth = _promotion_truth()
    assert promoted_overrating(_scores(truth, truth.p_click_relevance.to_numpy()), truth, k=1) == 0.0
    assert promoted_overrating(_scores(truth, truth.p_click_relevance.to_numpy()), truth) == 0.0
    promoted_first = truth.p_click_relevance.to_numpy() + 10 * truth.promoted.to_numpy()
    # k = 1: request 1 shows the promoted item on top (1) where the truth would not (0); request 2 agrees: (1 + 0) / 2.
    assert promoted_overrating(_scores(truth, promoted_first), truth, k=1) == pytest.approx(0.5)
    # k = 2: request 1: 1/2 - 0/2; request 2 (2 items): 1/2 - 1/2.
    assert promoted_overrating(_scores(truth, promoted_first), truth, k=2) == pytest.approx(0.25)
    # Rows in another order and extra truth rows change nothing.
    shuffled = _scores(truth, promoted_first).iloc[[6, 2, 0, 4, 1, 3, 5]]
    assert promoted_overrating(shuffled, truth, k=1) == pytest.approx(0.5)
    assert promoted_overrating(_scores(truth, promoted_first).iloc[:5], truth, k=1) == pytest.approx(0.5)
    # Under-rating is negative; no promoted candidate at all gives NaN.
    promoted_last = truth.p_click_relevance.to_numpy() - 10 * truth.promoted.to_numpy()
    assert promoted_overrating(_scores(truth, promoted_last), truth, k=1) == pytest.approx(-0.5)
    nothing = truth.assign(promoted=False)
    assert np.isnan(promoted_overrating(_scores(nothing, promoted_first), nothing))


def test_promoted_overrating_errors() -> None:
    truth = _promotion_truth()
    scores = _scores(truth, np.zeros(len(truth)))
    with pytest.raises(InputError, match="impressions_truth.parquet, column 'promoted': has no 'promoted' column: "
                                         "it is not the truth of `t4r-dmt synth --policy promotion`"):
        promoted_overrating(scores, truth.drop(columns=["promoted"]))
    stray = scores.copy()
    stray.loc[3, "request_id"] = 99
    with pytest.raises(InputError, match=r"impressions_truth.parquet, column 'request_id', row 3: has no row for a "
                                         r"scored impression \(value: 99\)"):
        promoted_overrating(stray, truth)
    with pytest.raises(InputError, match="predictions, column 'score': has no 'score' column"):
        promoted_overrating(scores.drop(columns=["score"]), truth)
    with pytest.raises(InputError, match=r"column 'product_id', row 7: repeats an impression .* \(value: 10\)"):
        promoted_overrating(scores, pd.concat([truth, truth.iloc[:1]], ignore_index=True))
    with pytest.raises(ValueError, match="k must be >= 1, got 0"):
        promoted_overrating(scores, truth, k=0)
    with pytest.raises(InputError, match="has no 'p_click_relevance' column"):
        relevance_ndcg(scores, truth.drop(columns=["p_click_relevance"]))


def _validation(ndcg: float, overrating: float, curve: list[float], k: int = 10,
                auc: float = 0.7) -> BiasValidation:
    planted = [1.0, 0.5]
    return BiasValidation(spearman=float("nan"), max_log_ratio=max_log_ratio(np.array(curve), np.array(planted)),
                          learned_curve=curve, planted_curve=planted, relevance_ndcg=ndcg,
                          promoted_overrating=overrating, k=k, relevance_auc=auc)


def test_validation_dict_and_comparison() -> None:
    run = _validation(0.8, 0.05, [0.0, -0.5], auc=0.75)
    no_bias = _validation(0.7, 0.25, [float("nan")] * 2, auc=0.72)
    assert list(run.to_dict()) == ["spearman", "max_log_ratio", "learned_curve", "planted_curve", "relevance_ndcg@10",
                                   "promoted_overrating@10", "relevance_auc"]
    assert run.to_dict()["max_log_ratio"] == pytest.approx(np.log(2) - 0.5)
    result = comparison(run, no_bias)
    assert result["run"] == run.to_dict() and result["no_bias_run"]["relevance_ndcg@10"] == 0.7
    assert result["difference"] == {"relevance_ndcg@10": pytest.approx(0.1), "promoted_overrating@10": pytest.approx(-0.2),
                                    "relevance_auc": pytest.approx(0.03)}
    with pytest.raises(ValueError, match="one cut-off"):
        comparison(run, _validation(0.7, 0.25, [0.0, 0.0], k=5))


def test_plot_bias_curves(tmp_path: Path) -> None:
    path = plot_bias_curves({"dmt": [0.0, -0.6, -1.0], "no_bias": [float("nan")] * 3}, np.array([1.0, 0.5, 0.3]),
                            tmp_path / "out" / "curves.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="dmt: learned curve has 2 positions, the planted one 3"):
        plot_bias_curves({"dmt": [0.0, 1.0]}, [1.0, 0.5, 0.3], tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()
