"""``--ctr_position_debias``: the item CTR as clicks over expected clicks given the positions shown (COEC).

Checked against a slow reference (a loop over impressions), for leakage (clicks logged at or after a request
never reach its row), on a logging policy that keeps one item at the top, and on its error path.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from log_fixtures import CONFIG, make_logs

from t4r_dmt.preprocess.candidates import POSITION_RATE_PRIOR, item_hour_counts, position_click_rates
from t4r_dmt.preprocess.pipeline import RankingData, preprocess_ranking

DEBIAS = dataclasses.replace(CONFIG, ctr_position_debias=True)


def _rows(out) -> pd.DataFrame:
    frames = [pd.read_parquet(p) for p in sorted(out.glob("ranking/*/train.parquet"))]
    return pd.concat(frames, ignore_index=True).sort_values(["request_id", "product_id"]).reset_index(drop=True)


def reference_rates(impressions: pd.DataFrame) -> np.ndarray:
    """Per impression, its position's smoothed click rate over every impression of hours <= its own (a loop)."""
    hour = impressions["event_time"].dt.floor("1h")
    rates = np.zeros(len(impressions))
    for j, (h, p) in enumerate(zip(hour, impressions["position"], strict=True)):
        upto = impressions[hour <= h]
        at = upto[upto["position"] == p]
        overall = upto["click"].sum() / len(upto)
        rates[j] = (at["click"].sum() + POSITION_RATE_PRIOR * overall) / (len(at) + POSITION_RATE_PRIOR)
    return rates


def reference_lift(impressions: pd.DataFrame, rates: np.ndarray) -> pd.Series:
    """``item_ctr_lift`` of each impression row (before the standardisation), by filtering the whole log."""
    a = CONFIG.rate_smoothing
    hour_end = impressions["event_time"].dt.floor("1h") + pd.Timedelta(hours=1)
    values = []
    for row in impressions.itertuples(index=False):
        shown = (hour_end <= row.event_time - pd.Timedelta(CONFIG.rate_delay)).to_numpy()
        if not shown.any() or impressions.loc[shown, "click"].sum() == 0:
            values.append(0.0)
            continue
        prior = impressions.loc[shown, "click"].sum() / shown.sum()
        mine = shown & (impressions["product_id"] == row.product_id).to_numpy()
        clicks, expected = impressions.loc[mine, "click"].sum(), rates[mine].sum()
        values.append(float(np.log((clicks + a * prior) / (expected + a * prior))))
    return pd.Series(values, index=pd.MultiIndex.from_frame(impressions[["request_id", "product_id"]]))


def _standardise(values: np.ndarray, fit: np.ndarray) -> np.ndarray:
    mean, std = values[fit].mean(), values[fit].std(ddof=1)
    return (values - mean) / std


@pytest.fixture(scope="module")
def logs():
    return make_logs()


@pytest.fixture(scope="module")
def debiased(logs, tmp_path_factory):
    events, impressions = logs
    out = tmp_path_factory.mktemp("coec")
    preprocess_ranking(RankingData(events, impressions), out, DEBIAS, progress=False)
    return _rows(out)


def test_position_click_rates_equal_the_loop(logs):
    _, impressions = logs
    hour = (impressions["event_time"].astype("int64") // 3_600_000_000_000).to_numpy()
    got = position_click_rates(hour, impressions["position"].to_numpy(), impressions["click"].to_numpy())
    np.testing.assert_allclose(got, reference_rates(impressions), rtol=1e-12)
    frame = impressions.rename(columns={"event_time": "request_ts"})
    frame["request_ts"] = frame["request_ts"].astype("int64")
    counts = item_hour_counts(frame, expected_clicks=True)
    assert counts["expected_clicks"].sum() == pytest.approx(got.sum())
    assert "expected_clicks" not in item_hour_counts(frame).columns  # only computed when asked for
    assert "expected_clicks" not in item_hour_counts(frame.drop(columns="position"), expected_clicks=True).columns


def test_debiased_ctr_equals_the_reference(logs, debiased):
    _, impressions = logs
    want = reference_lift(impressions, reference_rates(impressions))
    keys = pd.MultiIndex.from_frame(debiased[["request_id", "product_id"]])
    raw = want.reindex(keys).to_numpy()
    assert not np.isnan(raw).any()
    fit = (debiased["window"] == 1).to_numpy()
    np.testing.assert_allclose(debiased["item_ctr_lift"].to_numpy(), _standardise(raw, fit), rtol=1e-5, atol=1e-5)
    assert raw[fit].std() > 0  # defined and varying in the fit window already


def test_clicks_logged_at_or_after_a_request_never_reach_its_row(logs, debiased, tmp_path):
    """Flip every click of the last day: the rows of the days before keep their (standardised) CTR."""
    events, impressions = logs
    last_day = impressions["event_time"] >= impressions["event_time"].max().floor("1d")
    flipped = impressions.copy()
    flipped.loc[last_day, "click"] = 1 - flipped.loc[last_day, "click"]
    flipped.loc[last_day, "order"] = 0
    preprocess_ranking(RankingData(events, flipped), tmp_path, DEBIAS, progress=False)
    again = _rows(tmp_path)
    early = (again["window"] < again["window"].max()).to_numpy()
    assert early.sum() > 10 and again[["request_id", "product_id"]].equals(debiased[["request_id", "product_id"]])
    np.testing.assert_array_equal(again.loc[early, "item_ctr_lift"], debiased.loc[early, "item_ctr_lift"])
    assert not np.array_equal(again.loc[~early, "item_ctr_lift"], debiased.loc[~early, "item_ctr_lift"])


def test_an_item_kept_at_the_top_does_not_look_relevant_for_it():
    """A policy puts item 1 first in every list; every item is clicked at its position's rate only. The plain
    CTR rates item 1 far above the others; clicks over expected clicks rate it like them."""
    rng = np.random.default_rng(0)
    rows = []
    for request in range(3000):
        items = [1, *rng.choice(np.arange(2, 40), 5, replace=False)]
        for position, item in enumerate(items):
            rows.append((request, request * 60_000_000_000, item, position,
                         int(rng.random() < 0.4 / (1 + position))))
    frame = pd.DataFrame(rows, columns=["request_id", "request_ts", "product_id", "position", "click"])
    counts = item_hour_counts(frame, expected_clicks=True).groupby("product_id")[["impressions", "clicks", "expected_clicks"]].sum()
    plain = counts["clicks"] / counts["impressions"] / (frame["click"].mean())
    coec = counts["clicks"] / counts["expected_clicks"]
    assert plain[1] > 2.0 and plain.drop(1).mean() < 0.9
    assert coec[1] == pytest.approx(1.0, abs=0.05) and coec.drop(1).mean() == pytest.approx(1.0, abs=0.05)


def test_debias_needs_positions(logs, tmp_path):
    events, _ = logs
    with pytest.raises(ValueError, match="--ctr_position_debias needs an impression log with positions"):
        preprocess_ranking(RankingData(events, None), tmp_path, DEBIAS, progress=False)
