"""``t4r-dmt preprocess`` end to end: files in, atomic output, stats, sessions hand-off, sampled
negatives without an impression log, and every bad-input path."""

from __future__ import annotations

import json
import sys
import types

import pandas as pd
import pytest
from log_fixtures import CONFIG, T0, make_logs
from merlin.schema.io.tensorflow_metadata import TensorflowMetadata

from t4r_dmt.errors import InputError
from t4r_dmt.preprocess import command
from t4r_dmt.preprocess.arguments import PreprocessArguments
from t4r_dmt.preprocess.config import RankingConfig
from t4r_dmt.preprocess.pipeline import RankingData, preprocess_ranking
from t4r_dmt.preprocess.workflow import BIAS_COLUMNS

SMALL = {"click_length": 3, "cart_length": 2, "order_length": 2, "events_per_bucket": 100}


@pytest.fixture()
def files(tmp_path):
    events, impressions = make_logs(seed=2)
    events["user_session"] = events["user_id"].astype(str) + "-" + events["event_time"].dt.day.astype(str)
    events["category_code"] = events["category_code"].astype(object)
    events.to_parquet(tmp_path / "events.parquet")
    impressions.to_parquet(tmp_path / "impressions.parquet")
    return tmp_path / "events.parquet", tmp_path / "impressions.parquet"


def _args(files, out, **kwargs):
    events, impressions = files
    options = {**SMALL, "with_sessions": False, **kwargs}
    return PreprocessArguments(events=str(events), impressions=str(impressions), out=str(out), **options)


def test_run_writes_everything_atomically_and_needs_overwrite(files, tmp_path):
    out = tmp_path / "out"
    summary = command.run(_args(files, out))
    assert summary["mode"] == "impressions" and summary["windows"] == 3
    stats = json.loads((out / "stats.json").read_text())
    assert summary["ranking_rows"] == sum(r["train"] for r in stats["rows_per_window"].values())
    assert set(stats["readers"]) == {"events", "impressions"}
    assert {"read_s", "history_s", "fit_s", "transform_write_s"} <= set(stats["timings"])
    assert (out / "ranking" / "schema.pbtxt").exists() and (out / "workflow" / "workflow.pkl").exists()
    with pytest.raises(FileExistsError, match="--overwrite"):
        command.run(_args(files, out))
    command.run(_args(files, out, overwrite=True, fit_windows=2))
    stats = json.loads((out / "stats.json").read_text())
    assert stats["fit_windows"] == [1, 2] and "windows 1..2 only" in stats["fit_note"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.parquet", "impressions.parquet", "out"]


def test_a_failed_run_leaves_no_output(files, tmp_path):
    events, impressions = files
    frame = pd.read_parquet(impressions)
    frame = frame[frame["event_time"].dt.day != 2]  # day 2 has no impressions: a gap
    frame.to_parquet(impressions)
    with pytest.raises(InputError, match=r"window 2 \(starting 2020-01-02 00:00:00\) has no impressions"):
        command.run(_args(files, tmp_path / "out"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.parquet", "impressions.parquet"]


def test_missing_input_file_is_named(files, tmp_path):
    with pytest.raises(InputError, match=r"nowhere\.parquet: --impressions: no such file"):
        command.run(PreprocessArguments(events=str(files[0]), impressions=str(tmp_path / "nowhere.parquet"),
                                        out=str(tmp_path / "out")))
    assert not (tmp_path / "out").exists()


def test_sessions_are_written_beside_the_ranking_data(files, tmp_path, monkeypatch):
    calls = {}

    def write_sessions(events, out_dir, window="1d", client=None):
        calls.update(rows=len(events), out_dir=out_dir, window=window, client=client)
        out_dir.mkdir()
        (out_dir / "schema.pbtxt").write_text("")
        return {"rows_per_window": {"1": 5}}

    fake = types.ModuleType("t4r_dmt.preprocess.sessions")
    fake.write_sessions = write_sessions
    monkeypatch.setitem(sys.modules, "t4r_dmt.preprocess.sessions", fake)
    out = tmp_path / "out"
    command.run(_args(files, out, with_sessions=True, window="1d"))
    assert calls["window"] == "1d" and calls["client"] is None and calls["rows"] == 302
    assert calls["out_dir"].name == "sessions" and (out / "sessions" / "schema.pbtxt").exists()
    assert json.loads((out / "stats.json").read_text())["sessions"] == {"rows_per_window": {"1": 5}}


def test_sampled_negatives_without_an_impression_log(tmp_path):
    events, _ = make_logs(seed=3)
    events["user_session"] = events["user_id"].astype(str)
    config = RankingConfig(click_length=3, cart_length=2, order_length=2, negatives=3, events_per_bucket=100)
    stats = preprocess_ranking(RankingData(events), tmp_path, config, progress=False)
    assert stats["mode"] == "sampled_negatives" and stats["bias_features"] is False
    schema = TensorflowMetadata.from_proto_text_file(str(tmp_path / "ranking")).to_merlin_schema()
    assert not schema.select_by_tag("bias").column_names
    assert not set(BIAS_COLUMNS) & set(schema.column_names)
    rows = pd.concat([pd.read_parquet(p) for p in sorted(tmp_path.glob("ranking/*/train.parquet"))])
    views = events[events["event_type"] == "view"].sort_values(["event_time", "user_id", "product_id"], kind="stable")
    assert rows["request_id"].nunique() == len(views)
    for request_id, group in rows.groupby("request_id"):
        positive = group[group["click"] == 1]
        assert len(positive) == 1 and len(group) == 4
        assert group["product_id"].nunique() == 4  # negatives distinct and never the positive
        view = views.iloc[request_id - 1]
        assert positive["product_id"].item() == view["product_id"]
        bought = events[(events["event_type"] == "purchase") & (events["user_session"] == view["user_session"])
                        & (events["product_id"] == view["product_id"]) & (events["event_time"] >= view["event_time"])]
        assert positive["order"].item() == int(len(bought) > 0)
        assert (group.loc[group["click"] == 0, "order"] == 0).all()
    again = tmp_path / "again"
    again.mkdir()
    preprocess_ranking(RankingData(events), again, config, progress=False)
    pd.testing.assert_frame_equal(pd.read_parquet(again / "ranking/0002/train.parquet"),
                                  pd.read_parquet(tmp_path / "ranking/0002/train.parquet"))


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        (lambda e, i: (e.drop(columns="user_id"), i), InputError, "events, column 'user_id': required event column"),
        (lambda e, i: (e.iloc[:0], i), InputError, "the event log has no rows"),
        (lambda e, i: (e[e["event_type"] != "view"], None), InputError, "no 'view' events"),
        (lambda e, i: (e, i[i["event_time"] < T0 + pd.Timedelta(days=1)]), ValueError, "fit_windows=2 but"),
        (lambda e, i: (e, i.drop(columns="click")), InputError, "column 'click': required impression column"),
    ],
)
def test_bad_inputs_raise_clear_errors(tmp_path, change, error, message):
    events, impressions = change(*make_logs(seed=4))
    config = RankingConfig(fit_windows=2, events_per_bucket=100) if "fit_windows" in message else CONFIG
    with pytest.raises(error, match=message):
        preprocess_ranking(RankingData(events, impressions), tmp_path, config, progress=False)


def test_items_file_fills_items_not_seen_before_the_request(tmp_path):
    events, impressions = make_logs(seed=0)
    items = pd.DataFrame({"product_id": [14], "category_id": [2001], "category_code": [None], "brand": ["w"],
                          "price": [6.0]})
    preprocess_ranking(RankingData(events, impressions, items), tmp_path, CONFIG, progress=False)
    rows = pd.read_parquet(tmp_path / "ranking" / "0001" / "train.parquet")
    row = rows[(rows["request_id"] == 900) & (rows["product_id"] == 14)].iloc[0]
    categories = pd.read_parquet(tmp_path / "workflow" / "categories" / "unique.category.parquet")["category"]
    brands = pd.read_parquet(tmp_path / "workflow" / "categories" / "unique.brand.parquet")["brand"]
    # Item 14 is first logged in the request's own second: only the items file knows it.
    assert categories.loc[row["item_category"]] == 2001
    assert brands.loc[row["item_brand"]] == "w"


def test_a_log_without_brands_encodes_every_brand_as_null(tmp_path):
    events, impressions = make_logs(seed=5)
    events["brand"] = None
    preprocess_ranking(RankingData(events, impressions), tmp_path, CONFIG, progress=False)
    rows = pd.concat([pd.read_parquet(p) for p in sorted(tmp_path.glob("ranking/*/train.parquet"))])
    assert (rows["item_brand"] == 1).all()
    assert {v for values in rows["click_brand_seq"] for v in values} == {1}
    assert pd.read_parquet(tmp_path / "workflow" / "categories" / "unique.brand.parquet").empty
    schema = TensorflowMetadata.from_proto_text_file(str(tmp_path / "ranking")).to_merlin_schema()
    assert schema["item_brand"].int_domain.max == schema["click_brand_seq"].int_domain.max == 2


def test_the_dask_context_is_off_by_default_and_joins_a_scheduler():
    from distributed import LocalCluster
    from merlin.core.utils import global_dask_client

    with command.dask_cluster(0, None) as client:
        assert client is None
    with LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster:
        with command.dask_cluster(0, cluster.scheduler_address) as client:
            assert global_dask_client() is client
            assert client.submit(sum, [1, 2]).result() == 3
