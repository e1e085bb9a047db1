"""``t4r-dmt report --truth``: bias validation of real tiny runs on ``synth --policy promotion`` data."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from model_fixtures import tiny_config

from t4r_dmt import cli
from t4r_dmt.analysis import compare_runs, validate_run
from t4r_dmt.analysis.report import ReportArguments, run
from t4r_dmt.metrics.results import RunResults

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SYNTH = ["--users", "60", "--items", "50", "--days", "2", "--requests_per_day", "30", "--categories", "5",
         "--policy", "promotion", "--promoted_share", "0.2"]
PREPROCESS = ["--click_length", "3", "--cart_length", "2", "--order_length", "2", "--events_per_bucket", "100",
              "--no_with_sessions"]
TRAIN = ["--windows", "1:2", "--report_to", "none", "--per_device_train_batch_size", "32"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """raw/ (synth), data/ (preprocess), runs/dmt and runs/no_bias: tiny DMTs trained on window 1."""
    root = tmp_path_factory.mktemp("truth_report")
    raw, data = root / "raw", root / "data"
    assert cli.main(["synth", "--out", str(raw), *SYNTH]) == 0
    assert cli.main(["preprocess", "--events", str(raw / "events.parquet"), "--impressions",
                     str(raw / "impressions.parquet"), "--items", str(raw / "items.parquet"), "--out", str(data),
                     *PREPROCESS]) == 0
    folders = {"raw": raw, "data": data}
    for name, config in (("dmt", tiny_config(name="tiny_dmt")),
                         ("no_bias", tiny_config(name="tiny_no_bias", bias={"enabled": "off"}))):
        preset = root / f"{name}.json"
        preset.write_text(json.dumps(config.to_dict()))
        folders[name] = root / "runs" / name
        assert cli.main(["train", "--data", str(data), "--config", str(preset), "--out", str(folders[name]),
                         *TRAIN]) == 0
    return folders


def test_validate_and_compare_runs(runs: dict[str, Path]) -> None:
    truth = runs["raw"] / "truth"
    with_tower = validate_run(runs["dmt"], runs["data"], truth)
    assert len(with_tower.learned_curve) == len(with_tower.planted_curve) == 20
    assert np.isfinite(with_tower.learned_curve).all() and math.isfinite(with_tower.max_log_ratio)
    assert 0 < with_tower.relevance_ndcg <= 1 and -1 <= with_tower.promoted_overrating <= 1
    assert 0 <= with_tower.relevance_auc <= 1  # a tiny model: its value is not asserted (see test_bias_validation)
    result = compare_runs(runs["dmt"], runs["no_bias"], runs["data"], truth)
    no_bias = result["no_bias_run"]
    assert math.isnan(no_bias["spearman"]) and math.isnan(no_bias["max_log_ratio"])
    assert math.isfinite(no_bias["promoted_overrating@10"])
    assert result["run"] == with_tower.to_dict()
    assert result["difference"]["promoted_overrating@10"] == pytest.approx(
        with_tower.promoted_overrating - no_bias["promoted_overrating@10"])
    assert result["difference"]["relevance_auc"] == pytest.approx(with_tower.relevance_auc - no_bias["relevance_auc"])


def test_report_writes_the_bias_validation(runs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "report"
    truth = runs["raw"] / "truth"
    assert cli.main(["report", str(runs["dmt"]), str(runs["no_bias"]), "--out", str(out), "--truth", str(truth)]) == 0
    saved = json.loads((out / "bias_validation.json").read_text())
    assert saved["truth"] == str(truth) and list(saved["runs"]) == ["dmt", "no_bias"]
    dmt, no_bias = saved["runs"]["dmt"], saved["runs"]["no_bias"]
    assert dmt["bias_tower"] is True and no_bias["bias_tower"] is False
    assert dmt["data"] == str(runs["data"])  # found through the run's config.json
    assert no_bias["spearman"] is None and no_bias["max_log_ratio"] is None  # NaN -> null
    assert isinstance(dmt["max_log_ratio"], float) and isinstance(dmt["promoted_overrating@10"], float)
    (pair,) = saved["comparisons"]
    assert (pair["run"], pair["no_bias_run"]) == ("dmt", "no_bias")
    assert pair["difference"]["relevance_ndcg@10"] == pytest.approx(
        dmt["relevance_ndcg@10"] - no_bias["relevance_ndcg@10"])
    assert (out / "bias_curves.png").read_bytes()[:8] == PNG_MAGIC
    report = (out / "report.md").read_text()
    assert f"## Bias validation against {truth}" in report and "![bias_curves](bias_curves.png)" in report
    assert "| no_bias | n/a | n/a |" in report


def test_report_without_truth_is_unchanged(runs: dict[str, Path], tmp_path: Path) -> None:
    summary = run(ReportArguments(runs=[str(runs["dmt"])], out=str(tmp_path / "plain")))
    assert sorted(p.name for p in (tmp_path / "plain").iterdir()) == ["plots", "report.md"]
    assert "bias_validation" not in summary and "Bias validation" not in (tmp_path / "plain" / "report.md").read_text()


def test_report_truth_errors(runs: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--data only applies with --truth"):
        ReportArguments(runs=["r"], data="d")
    with pytest.raises(FileNotFoundError, match="truth/ folder"):
        run(ReportArguments(runs=[str(runs["dmt"])], out=str(tmp_path / "a"), truth=str(tmp_path / "nowhere")))
    assert not (tmp_path / "a").exists()  # nothing written
    next_item = RunResults(task="next-item", model="xlnet")
    next_item.add_window(1, 2, 5, {"ndcg@20": 0.1})
    next_item.write(tmp_path / "next")
    with pytest.raises(ValueError, match="--truth validates ranking runs; these are next-item runs"):
        run(ReportArguments(runs=[str(tmp_path / "next")], out=str(tmp_path / "b"), truth=str(runs["raw"] / "truth")))
    # A ranking run without checkpoints (GBDT) is listed as skipped; a run whose data folder is gone needs --data.
    gbdt = RunResults(task="ranking", model="gbdt")
    gbdt.add_window(1, 2, 5, {"auc_click": 0.6})
    gbdt.write(tmp_path / "gbdt")
    run(ReportArguments(runs=[str(tmp_path / "gbdt")], out=str(tmp_path / "c"), truth=str(runs["raw"] / "truth")))
    saved = json.loads((tmp_path / "c" / "bias_validation.json").read_text())
    assert saved["runs"]["gbdt"] == {"skipped": "no model checkpoints (a GBDT run?)"} and saved["comparisons"] == []
    moved = tmp_path / "moved_run"
    moved.mkdir()
    (moved / "checkpoints" / "window_0001").mkdir(parents=True)
    (moved / "checkpoints" / "window_0001" / "model.pt").write_bytes(b"")
    config = json.loads((runs["dmt"] / "config.json").read_text())
    config["data"]["data"] = str(tmp_path / "gone")
    (moved / "config.json").write_text(json.dumps(config))
    gbdt.write(moved)
    with pytest.raises(FileNotFoundError, match="has no ranking/ folder; pass --data with --truth"):
        run(ReportArguments(runs=[str(moved)], out=str(tmp_path / "d"), truth=str(runs["raw"] / "truth")))


def test_report_writes_the_position_curves(runs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "report"
    assert cli.main(["report", str(runs["dmt"]), str(runs["no_bias"]), "--out", str(out), "--position_curves",
                     "--min_pairs", "2"]) == 0
    saved = json.loads((out / "position_curves.json").read_text())
    assert saved["data"] == str(runs["data"]) and saved["min_pairs"] == 2
    n_positions = len(saved["positions"])
    assert list(saved["learned_log"]) == ["dmt"]  # no_bias has no tower: left out
    assert len(saved["learned_log"]["dmt"]) == len(saved["click_rate_log"]) == len(saved["swap_log"]) == n_positions
    assert saved["learned_log"]["dmt"][0] == 0.0 and saved["swap_log"][0] == 0.0
    assert set(saved["spearman"]["runs"]["dmt"]) == {"learned_vs_swap", "learned_vs_click_rate"}
    assert (out / "position_curves.png").read_bytes()[:8] == PNG_MAGIC
    report = (out / "report.md").read_text()
    assert "## Position curves of" in report and "![position_curves](position_curves.png)" in report
    assert "| dmt (learned) vs adjacent swaps |" in report and "no_bias (learned)" not in report


def test_report_position_curves_errors(runs: dict[str, Path], tmp_path: Path) -> None:
    next_item = RunResults(task="next-item", model="xlnet")
    next_item.add_window(1, 2, 5, {"ndcg@20": 0.1})
    next_item.write(tmp_path / "next")
    with pytest.raises(ValueError, match="--position_curves reads ranking runs; these are next-item runs"):
        run(ReportArguments(runs=[str(tmp_path / "next")], out=str(tmp_path / "a"), position_curves=True))
    # Two runs on two data folders: one plot of one log's curves cannot hold both.
    other = tmp_path / "other_run"
    other.mkdir()
    (tmp_path / "other_data" / "ranking").mkdir(parents=True)
    config = json.loads((runs["dmt"] / "config.json").read_text())
    config["data"]["data"] = str(tmp_path / "other_data")
    (other / "config.json").write_text(json.dumps(config))
    RunResults.load(runs["dmt"]).write(other)
    with pytest.raises(ValueError, match="reads one data folder"):
        run(ReportArguments(runs=[str(runs["dmt"]), str(other)], out=str(tmp_path / "b"), position_curves=True))
    assert not (tmp_path / "b").exists()  # refused before anything is written: no metric plots, no report


def test_monotone_fit_pools_a_rise_by_its_clicks() -> None:
    from paths import load_benchmark

    floor = load_benchmark("examination_floor")
    curve = np.array([0.0, -1.0, -0.5, -2.0])
    # Positions 1 and 2 rise (-1.0 -> -0.5): pooled to their click-weighted mean, 3 and 1 clicks: -0.875.
    click = pd.Series([1] * 5 + [1] * 3 + [1] * 1 + [1] * 2)
    position = pd.Series([0] * 5 + [1] * 3 + [2] * 1 + [3] * 2)
    np.testing.assert_allclose(floor.monotone_fit(curve, click, position), [0.0, -0.875, -0.875, -2.0])
    # A falling curve is left as it is.
    np.testing.assert_allclose(floor.monotone_fit(np.array([0.0, -1.0, -2.0, -2.5]), click, position),
                               [0.0, -1.0, -2.0, -2.5])


def test_examination_floor_benchmark(runs: dict[str, Path], tmp_path: Path) -> None:
    """benchmarks/examination_floor.py on a paper_table-like WORK/seed0: its fits read the rows the run trained on."""
    from paths import load_benchmark

    floor = load_benchmark("examination_floor")
    seed = tmp_path / "seed0"
    (seed / "runs").mkdir(parents=True)
    for name, target in (("raw", runs["raw"]), ("data", runs["data"]), ("runs/dmt", runs["dmt"])):
        (seed / name).symlink_to(target, target_is_directory=True)
    result = floor.floor_of_seed(seed, "dmt")
    assert set(result["max_log_ratio"]) == {"learned", "model", "inputs", "oracle", "oracle_all_days",
                                            "model_monotone", "inputs_monotone", "oracle_monotone"}
    for kind in ("model", "inputs", "oracle"):  # the monotone fits never rise down the list
        assert np.all(np.diff(result["curves"][f"{kind}_monotone"]) <= 1e-12)
    # Shares of the planted relevance logit's variance; the inputs carry most of it even on these few rows (0.86).
    assert set(result["r2"]) == {"model", "inputs"}
    assert all(0 <= share <= 1 for share in result["r2"].values())
    assert result["r2"]["inputs"] > 0.5
    validation = validate_run(runs["dmt"], runs["data"], runs["raw"] / "truth")
    np.testing.assert_allclose(result["curves"]["learned"], validation.learned_curve)
    impressions = pd.read_parquet(runs["raw"] / "impressions.parquet")
    assert result["rows_all_days"] == len(impressions)
    assert 0 < result["rows"] < len(impressions)  # window 1's training rows: the run's last checkpoint is 1
    assert math.isfinite(result["max_log_ratio"]["oracle_all_days"])
    assert all(len(curve) == len(validation.planted_curve) for curve in result["curves"].values())
