"""benchmarks/peers.py: its data preparation, each model's training on tiny windows, and its table."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
from model_fixtures import FixtureSpec, write_ranking_fixture
from paths import BENCHMARKS

sys.path.insert(0, str(BENCHMARKS))
import peers  # noqa: E402  (benchmarks/peers.py)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("peers")
    write_ranking_fixture(root / "ranking", n_windows=2, spec=FixtureSpec(requests_per_window=30), seed=2)
    return root


def test_padded_keeps_most_recent_events():
    out = peers._padded(np.array([np.array([5, 6, 7]), np.array([], dtype=np.int64), None], dtype=object), 2)
    assert out.tolist() == [[6, 7], [0, 0], [0, 0]]


def test_load_data_shapes_and_windows(data_dir):
    data = peers.load_data(peers.Settings(str(data_dir)))
    assert data.behaviors == ["click", "cart", "order"]
    assert data.train.lists["click_item_id_seq"].shape[1] == 8
    assert len(data.train) > 0 and len(data.eval) > 0
    assert set(data.dense) == {"user_click_count_7d", "item_price_norm", "click_category_seq_hits"}
    with pytest.raises(ValueError, match="no such windows"):
        peers.load_data(peers.Settings(str(data_dir), windows="2:5"))


def test_gbdt_features_count_sequence_hits(data_dir):
    data = peers.load_data(peers.Settings(str(data_dir)))
    x = peers._gbdt_features(data, data.train)
    assert x.shape == (len(data.train), 3 + 3 + 3 * 4)
    lengths = (data.train.lists["click_item_id_seq"] != 0).sum(1)
    np.testing.assert_array_equal(x[:, 6], lengths)  # first behaviour's length follows the dense columns


@pytest.mark.parametrize("name", ["dmt", "din", "mmoe_deepctr", "mmoe_rechub", "ple_rechub", "lightgbm"])
def test_every_model_trains_and_scores(data_dir, name):
    result = peers.measure(name, peers.Settings(str(data_dir), batch=64))
    assert result["model"] == name
    assert 0.0 <= result["auc_click"] <= 1.0
    assert math.isnan(result["auc_order"]) or 0.0 <= result["auc_order"] <= 1.0
    assert result["train_rows"] > 0 and result["rows_per_s"] > 0 and result["peak_rss_mb"] > 0
    if name == "lightgbm":
        assert result["train_mflop_per_row"] is None
    else:
        assert result["train_mflop_per_row"] > 0
        assert result["train_gflop_per_s"] == pytest.approx(result["train_mflop_per_row"] * result["rows_per_s"] / 1e3)


def test_flops_per_row_count_forward_and_weight_gradients(data_dir):
    """A linear layer on (B, 4) -> (B, 2): 2·4·2 FLOPs forward, as many for the weight gradient (the input needs
    none), so 32 per row."""
    import torch

    data = peers.load_data(peers.Settings(str(data_dir)))
    model = torch.nn.Sequential(torch.nn.Linear(4, 2), torch.nn.Sigmoid())
    x = torch.randn(len(data.train), 4)
    flops = peers._train_flops_per_row("mmoe_deepctr", model, lambda frames, rows: x[rows], data.train, 16)
    assert flops == 32
    assert all(p.grad is None for p in model.parameters())  # the counting step leaves no gradient behind


def test_settings_and_model_errors(data_dir, tmp_path):
    with pytest.raises(ValueError, match="--batch and --epochs must be >= 1"):
        peers.Settings(str(data_dir), batch=0)
    with pytest.raises(ValueError, match="unknown model"):
        peers.run(peers.Settings(str(data_dir)), ("xgboost",), out=tmp_path / "p")


def test_median_run_and_repeat_errors(data_dir, tmp_path):
    runs = [{"model": "dmt", "rows_per_s": v} for v in (300.0, 100.0, 200.0, 400.0)]
    best = peers.median_run(runs)
    assert best["rows_per_s"] == 200.0  # the lower middle of four
    assert best["rows_per_s_all_runs"] == [300.0, 100.0, 200.0, 400.0]
    assert peers.median_run([*runs, {"model": "dmt", "error": "boom"}]) == {"model": "dmt", "error": "boom"}
    with pytest.raises(ValueError, match="--repeat must be >= 1"):
        peers.run(peers.Settings(str(data_dir)), ("dmt",), out=tmp_path / "p", repeat=0)


def test_markdown_ratios():
    rows = [{"model": "dmt", "auc_click": 0.7, "auc_order": 0.6, "rows_per_s": 100.0, "peak_rss_mb": 1000.0,
             "train_rows": 10, "eval_rows": 5, "rows_per_s_vs_dmt": 1.0, "peak_rss_vs_dmt": 1.0},
            {"model": "din", "error": "boom"}]
    md = peers.markdown({"settings": {"batch": 256, "epochs": 1}, "rows": rows,
                         "machine": {"OMP_NUM_THREADS": "1"}})
    assert "| dmt | 0.7000 | 0.6000 | 100 | - | - | 1,000 | 1.00 | 1.00 |" in md
    rows[0].update(train_mflop_per_row=12.5, train_gflop_per_s=1.25)
    md = peers.markdown({"settings": {"batch": 256, "epochs": 1}, "rows": rows,
                         "machine": {"OMP_NUM_THREADS": "1"}})
    assert "| dmt | 0.7000 | 0.6000 | 100 | 12.5 | 1.2 | 1,000 | 1.00 | 1.00 |" in md
    assert "| din | error: boom |" in md
