"""Position curves of a log with real positions: raw click rate, adjacent-swap examination, learned curves."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from t4r_dmt.analysis.position_curves import (
    POSITION_CURVES_FILE,
    POSITION_PLOT_FILE,
    click_rate_by_position,
    finite_spearman,
    position_curves,
    read_ranking_impressions,
    swap_curve,
    write_position_curves,
)
from t4r_dmt.analysis.report import ReportArguments

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
EXAMINATION = np.array([1.0, 0.6, 0.45, 0.35, 0.3, 0.25])


def _hand() -> pd.DataFrame:
    """Two lists of three items: position 0 clicked twice of 2, position 1 once of 2, position 2 never."""
    return pd.DataFrame({"product_id": [1, 2, 3, 2, 1, 3], "position": [0, 1, 2, 0, 1, 2],
                         "click": [1, 0, 0, 1, 1, 0]})


def _confounded_log(seed: int = 0, n_lists: int = 6000, n_items: int = 40) -> pd.DataFrame:
    """Lists of 6 out of ``n_items`` items, ordered by relevance plus noise (so the top holds the relevant items
    and the raw click rate falls faster than the examination); click ~ Bernoulli(EXAMINATION[k] * r(d))."""
    rng = np.random.default_rng(seed)
    relevance = rng.uniform(0.05, 0.6, n_items)
    frames = []
    for _ in range(n_lists):
        items = rng.choice(n_items, size=len(EXAMINATION), replace=False)
        order = items[np.argsort(-(relevance[items] + rng.normal(0.0, 0.15, len(items))))]
        clicks = rng.random(len(order)) < EXAMINATION * relevance[order]
        frames.append((order, clicks))
    return pd.DataFrame({"product_id": np.concatenate([o for o, _ in frames]),
                         "position": np.tile(np.arange(len(EXAMINATION)), n_lists),
                         "click": np.concatenate([c for _, c in frames]).astype(np.int8)})


def test_click_rate_by_position_on_a_hand_example() -> None:
    rate, shown = click_rate_by_position(_hand(), 4)
    np.testing.assert_allclose(rate[:3], [1.0, 0.5, 0.0])
    assert math.isnan(rate[3])  # never shown: NaN, not a division by zero
    assert shown.tolist() == [2, 2, 2, 0]


def test_swap_curve_on_a_hand_example() -> None:
    # Item 1 at position 0 (clicked) and at 1 (clicked); item 2 at 1 (not) and at 0 (clicked); each 1 + 1
    # impressions: numerator 1*1/2 + 0*1/2 = 0.5, denominator 1*1/2 + 1*1/2 = 1 -> p(1)/p(0) = 0.5.
    curve = swap_curve(_hand(), 3, min_pairs=2)
    assert curve.pairs.tolist() == [2, 0]  # item 3 stays at 2: no pair (1, 2)
    assert curve.ratio[0] == pytest.approx(0.5)
    assert curve.log_curve[:2] == pytest.approx([0.0, math.log(0.5)])
    assert math.isnan(curve.ratio[1]) and math.isnan(curve.log_curve[2])


def test_swap_curve_recovers_the_examination_under_a_confounding_policy() -> None:
    log = _confounded_log()
    swap = swap_curve(log, len(EXAMINATION), min_pairs=10)
    truth = np.log(EXAMINATION / EXAMINATION[0])
    assert np.isfinite(swap.log_curve).all()
    np.testing.assert_allclose(swap.log_curve, truth, atol=0.12)
    # The raw click rate is confounded with relevance: it falls clearly below the examination.
    rate, _ = click_rate_by_position(log, len(EXAMINATION))
    raw = np.log(rate / rate[0])
    assert raw[-1] < truth[-1] - 0.3
    assert abs(swap.log_curve[-1] - truth[-1]) < abs(raw[-1] - truth[-1]) / 3


def test_too_few_pairs_give_nan_not_an_error() -> None:
    swap = swap_curve(_hand(), 3, min_pairs=3)
    assert np.isnan(swap.ratio).all() and swap.log_curve[0] == 0.0 and np.isnan(swap.log_curve[1:]).all()
    no_clicks = _hand().assign(click=0)
    assert np.isnan(swap_curve(no_clicks, 3, min_pairs=1).ratio).all()  # 0 / 0 is NaN, no warning or error
    curves = position_curves(no_clicks, 3)
    assert np.isnan(curves.click_rate_log).all()  # no click at position 0: nothing to align at
    assert math.isnan(curves.spearman()["click_rate_vs_swap"])


@pytest.mark.parametrize("column", ["product_id", "position", "click"])
def test_a_missing_column_is_named(column: str) -> None:
    frame = _hand().drop(columns=[column])
    with pytest.raises(ValueError, match=f"no '{column}' column"):
        swap_curve(frame, 3)
    with pytest.raises(ValueError, match=f"no '{column}' column"):
        click_rate_by_position(frame, 3)


def test_bad_arguments_are_errors() -> None:
    with pytest.raises(ValueError, match="min_pairs >= 1"):
        swap_curve(_hand(), 3, min_pairs=0)
    with pytest.raises(ValueError, match="'position' must be >= 0"):
        click_rate_by_position(_hand().assign(position=-1), 3)
    with pytest.raises(ValueError, match="expected 3"):
        position_curves(_hand(), 3, {"run": np.zeros(4)})
    with pytest.raises(ValueError, match="--min_pairs must be >= 1"):
        ReportArguments(runs=["r"], position_curves=True, min_pairs=0)
    with pytest.raises(ValueError, match="--data only applies"):
        ReportArguments(runs=["r"], data="d")


def test_finite_spearman_skips_unknown_positions() -> None:
    assert finite_spearman([0.0, -1.0, np.nan, -3.0], [0.0, -0.5, -0.7, -0.9]) == pytest.approx(1.0)
    assert math.isnan(finite_spearman([0.0, np.nan, np.nan], [0.0, -1.0, -2.0]))


def test_position_curves_json_and_png(tmp_path: Path) -> None:
    log = _confounded_log()
    learned = {"tower": np.log(EXAMINATION) + 2.0, "no_tower": np.full(len(EXAMINATION), np.nan)}
    curves = position_curves(log, len(EXAMINATION), learned, min_pairs=10)
    assert list(curves.learned) == ["tower"]  # NaN curve (no bias tower) left out
    np.testing.assert_allclose(curves.learned["tower"], np.log(EXAMINATION / EXAMINATION[0]))
    json_path, png_path = write_position_curves(curves, tmp_path / "out", {"data": "DATA"})
    assert png_path.read_bytes()[:8] == PNG_MAGIC and png_path.name == POSITION_PLOT_FILE
    saved = json.loads(json_path.read_text())
    assert json_path.name == POSITION_CURVES_FILE and saved["data"] == "DATA"
    assert saved["positions"] == list(range(6)) and saved["impressions"] == [6000] * 6
    assert saved["swap_log"][0] == 0.0 and len(saved["swap_ratio"]) == 5
    correlations = saved["spearman"]
    assert correlations["runs"]["tower"]["learned_vs_swap"] == pytest.approx(
        finite_spearman(curves.learned["tower"], curves.swap.log_curve))
    assert correlations["runs"]["tower"]["learned_vs_swap"] > 0.8  # the swap curve follows the planted one
    assert correlations["click_rate_vs_swap"] > 0.8
    leftovers = [p.name for p in (tmp_path / "out").iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []  # written through a temporary file, renamed


def test_read_ranking_impressions(tmp_path: Path) -> None:
    for window, (items, codes, clicks) in enumerate((([7, 8], [1, 2], [1, 0]), ([8], [3], [1])), start=1):
        folder = tmp_path / "data" / "ranking" / f"{window:04d}"
        folder.mkdir(parents=True)
        pd.DataFrame({"product_id": items, "position_index": codes, "click": clicks}).to_parquet(
            folder / "train.parquet")
    rows = read_ranking_impressions(tmp_path / "data")  # every window, position = position_index - 1
    assert rows.to_dict("list") == {"product_id": [7, 8, 8], "position": [0, 1, 2], "click": [1, 0, 1]}
    pd.DataFrame({"product_id": [7], "click": [1]}).to_parquet(folder / "train.parquet")
    with pytest.raises(ValueError, match="no 'position_index' column"):
        read_ranking_impressions(tmp_path / "data")
