"""Bias validation: the learned position curve against the planted one, NDCG against true relevance."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from t4r_dmt.analysis import load_bias_curve, position_curve, relevance_ndcg, spearman
from t4r_dmt.errors import InputError
from t4r_dmt.model.inputs import BiasBatch


class _MinusPosition(torch.nn.Module):
    """A stand-in bias tower: logit = -position + 0.1 * category (so the mean over rows shifts it)."""

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
