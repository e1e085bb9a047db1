"""Scaling that cannot silently fail: every dense feature is spread on every window of the default data, and a
feature that is constant over the fit windows is reported (log warning and ``stats.json``), never passed on raw
without a word."""

from __future__ import annotations

import logging

import numpy as np
import nvtabular as nvt
import pandas as pd
import pytest
from log_fixtures import CONFIG, T0, make_logs
from merlin.schema import Tags
from nvtabular import ops as nvt_ops

from t4r_dmt.preprocess.config import RankingConfig
from t4r_dmt.preprocess.ops import Interactions, ItemRates
from t4r_dmt.preprocess.pipeline import RankingData, preprocess_ranking
from t4r_dmt.preprocess.workflow import constant_features
from t4r_dmt.run_folder import load_schema
from t4r_dmt.synth.config import SynthConfig
from t4r_dmt.synth.generator import generate


def test_every_dense_column_of_every_window_of_the_default_data_is_scaled(tmp_path):
    """Issue 14: std in [0.2, 5] for every continuous column of every window (the fit window is window 1 only;
    item rates and interaction features must already vary there)."""
    data = generate(SynthConfig())
    out = tmp_path / "data"
    stats = preprocess_ranking(RankingData(data.events, data.impressions, data.items), out, RankingConfig(),
                               progress=False)
    assert stats["constant_features"] == []
    schema = load_schema(out / "ranking")
    dense = [c.name for c in schema.select_by_tag(Tags.CONTINUOUS) if not c.is_list]
    assert len(dense) == 95
    spread = {}
    for folder in sorted((out / "ranking").iterdir()):
        if folder.is_dir():
            frame = pd.concat([pd.read_parquet(f, columns=dense) for f in sorted(folder.glob("*.parquet"))])
            spread[folder.name] = frame.std()
    table = pd.DataFrame(spread)
    assert len(table.columns) == 4
    outside = table[(table < 0.2) | (table > 5)].stack()
    assert outside.empty, f"columns with std outside [0.2, 5] (column, window -> std):\n{outside}"


def test_constant_features_lists_the_normalised_columns_without_spread():
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [4.0, 4.0, 4.0], "c": [0.0, 1.0, 0.0]})
    workflow = nvt.Workflow((["a", "b"] >> nvt_ops.Normalize()) + (["c"] >> nvt_ops.LogOp()))
    workflow.fit(nvt.Dataset(frame, cpu=True))
    assert constant_features(workflow) == ["b"]


def test_a_feature_constant_over_the_fit_window_is_reported(tmp_path, caplog):
    events, impressions = make_logs()
    day_one = events["event_time"] < T0 + pd.Timedelta(days=1)
    events = events[~(day_one & (events["event_type"] == "purchase"))]  # no purchase before window 2
    with caplog.at_level(logging.WARNING, logger="t4r_dmt.preprocess.pipeline"):
        stats = preprocess_ranking(RankingData(events, impressions), tmp_path / "out", CONFIG, progress=False)
    assert {"order_item_count", "order_category_last_match", "user_purchase_power"} <= set(stats["constant_features"])
    assert "click_item_count" not in stats["constant_features"]
    assert any("constant over the fit windows 1..1" in r.message and "order_item_count" in r.message
               for r in caplog.records)


def test_config_and_operator_errors_name_the_field():
    with pytest.raises(ValueError, match="rate_delay must be a duration"):
        RankingConfig(rate_delay="soon")
    with pytest.raises(ValueError, match="rate_delay must be >= 0"):
        RankingConfig(rate_delay="-1h")
    with pytest.raises(ValueError, match="interaction_decay must be > 0"):
        RankingConfig(interaction_decay="0s")
    with pytest.raises(ValueError, match="decay_ns must be > 0"):
        Interactions("store", {"click": 3, "cart": 2, "order": 2}, decay_ns=0)
    with pytest.raises(ValueError, match="lengths must give N for each of"):
        Interactions("store", {"click": 3}, decay_ns=1)
    with pytest.raises(ValueError, match="delay_ns must be >= 0"):
        ItemRates("store", 20.0, delay_ns=-1)
    with pytest.raises(ValueError, match="smoothing must be > 0"):
        ItemRates("store", 0.0)
    assert np.isclose(RankingConfig(interaction_decay="12h").interaction_decay_ns, 12 * 3600e9)
