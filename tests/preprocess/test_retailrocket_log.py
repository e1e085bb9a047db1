"""RetailRocket's real multi-behaviour log without item properties: preprocess -> train -> report.

The shared log (../shared/data/retailrocket_multibehaviour) has views, carts and transactions of 2,174 visitors
over 4.5 months, and no category, brand or price: attribute-less items are a supported case, not a crash.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from model_fixtures import tiny_config
from paths import SHARED_DATA

from t4r_dmt.schema import BEHAVIORS, BIAS_TAG, NULL_CODE

EVENTS = SHARED_DATA / "retailrocket_multibehaviour" / "events.csv"

pytestmark = pytest.mark.skipif(not EVENTS.exists(), reason=f"{EVENTS} is absent")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from t4r_dmt.preprocess.arguments import PreprocessArguments
    from t4r_dmt.preprocess.command import run as preprocess

    out = tmp_path_factory.mktemp("rr") / "data"
    preprocess(PreprocessArguments(events=str(EVENTS), format="retailrocket", window="30d", out=str(out),
                                   with_sessions=False))
    return out


def test_an_attribute_less_log_preprocesses_into_monthly_windows(data):
    from t4r_dmt.run_folder import load_schema

    stats = json.loads((data / "stats.json").read_text())
    windows = sorted(p.name for p in (data / "ranking").iterdir() if p.is_dir())
    # 2015-05-03 .. 2015-09-18: 139 days over 6 windows of 30 days (aligned to multiples of 30 days since 1970).
    assert windows == ["0001", "0002", "0003", "0004", "0005", "0006"]
    schema = load_schema(data / "ranking")
    assert not schema.select_by_tag(BIAS_TAG).column_names  # sampled negatives: no list positions
    first = pd.read_parquet(data / "ranking" / "0001" / "train.parquet")
    assert len(first) > 1000 and stats["rows_per_window"]["1"]["train"] == len(first)
    # One positive and 4 sampled negatives per view: a fifth of the rows are clicks.
    assert first["click"].mean() == pytest.approx(0.2, abs=0.01)
    assert first["order"].sum() > 0  # transactions after the view, in the same session
    # No item properties: one category for every item (the readers' -1, "no category") and null brands; the
    # item ids are real.
    assert first["item_category"].nunique() == 1 and set(first["item_brand"]) == {NULL_CODE}
    assert first["item_id"].nunique() > 100
    for behavior in BEHAVIORS:  # the three behaviour sequences are filled from the log
        assert first[f"{behavior}_item_id_seq"].map(len).sum() > 0


def test_dmt_trains_and_reports_on_it(data, tmp_path):
    from t4r_dmt.analysis.report import ReportArguments
    from t4r_dmt.analysis.report import run as report
    from t4r_dmt.commands.train import run as train
    from t4r_dmt.training.arguments import DataArguments, RunTrainingArguments

    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(tiny_config(name="tiny_dmt").to_dict()))
    run_dir = tmp_path / "run"
    result = train(DataArguments(data=str(data), out=str(run_dir), config=str(config), windows="1:2"),
                   RunTrainingArguments(output_dir=str(run_dir / "trainer"), report_to=[], seed=1, max_steps=30,
                                        disable_tqdm=True, per_device_train_batch_size=128))
    window = result["windows"][0]
    assert (window["train_window"], window["eval_window"]) == (1, 2)
    assert window["n_rows"] == len(pd.read_parquet(data / "ranking" / "0002" / "valid.parquet"))
    assert window["logloss_click"] > 0 and not pd.isna(window["auc_click"])
    summary = report(ReportArguments(runs=[str(run_dir)], out=str(tmp_path / "report")))
    table = (tmp_path / "report" / "report.md").read_text()
    assert "tiny_dmt" in table and f"{window['auc_click']:.4f}" in table
    assert summary["report"] == str(tmp_path / "report" / "report.md")
