"""``t4r-dmt preprocess --format jd`` on the DMT authors' JD part file (skipped where shared/data lacks it): the
windows, the schema against the event workflow's, the encoded rows against the records, and ``train --config dmt``
on the result."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from merlin.schema import ColumnSchema, Schema, Tags
from merlin.schema.io.tensorflow_metadata import TensorflowMetadata
from paths import SHARED_DATA
from tfrecord_fixtures import write_records

from t4r_dmt.data.jd import DENSE_COLUMNS, JDReader
from t4r_dmt.data.tfrecord import iter_records
from t4r_dmt.errors import InputError
from t4r_dmt.preprocess.arguments import PreprocessArguments
from t4r_dmt.preprocess.command import run
from t4r_dmt.preprocess.config import RankingConfig
from t4r_dmt.preprocess.workflow import build_ranking_workflow
from t4r_dmt.schema import BEHAVIORS, NULL_CODE, OOV_CODE, PAD_CODE
from t4r_dmt.windows import SPLITS, valid_half

SAMPLE = SHARED_DATA / "jd_dmt_sample"
LENGTHS = {"click": 50, "cart": 10, "order": 10}
WINDOW_ROWS = [27, 36, 70, 56, 51]  # the sample's 240 requests on the 6h grid, 2019-12-18 12:00 .. 2019-12-19 18:00


@pytest.fixture(scope="module")
def sample() -> Path:
    if not SAMPLE.is_dir():
        pytest.skip(f"{SAMPLE} is absent")
    return SAMPLE


@pytest.fixture(scope="module")
def out(sample, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("jd") / "D"
    summary = run(PreprocessArguments(events=str(sample), out=str(folder), format="jd", window="6h",
                                      chunk_size=100, with_sessions=False))
    assert summary == {"out": str(folder), "mode": "jd_records", "windows": 5, "ranking_rows": 240}
    return folder


@pytest.fixture(scope="module")
def schema(out) -> Schema:
    return TensorflowMetadata.from_proto_text_file(str(out / "ranking")).to_merlin_schema()


@pytest.fixture(scope="module")
def raw(sample) -> pd.DataFrame:
    return pa.concat_tables(JDReader(sample, LENGTHS, progress=False)).to_pandas().set_index("request_id_text")


def _window(out: Path, window: int, split: str = "train") -> pd.DataFrame:
    return pd.read_parquet(out / "ranking" / f"{window:04d}" / f"{split}.parquet")


def test_windows_splits_and_stats(out):
    stats = json.loads((out / "stats.json").read_text())
    assert stats["windows"] == 5 and stats["window"] == "6h" and stats["fit_windows"] == [1]
    assert stats["window_starts"][0] == "2019-12-18 12:00:00" and stats["window_starts"][-1] == "2019-12-19 12:00:00"
    assert [stats["rows_per_window"][str(w)]["train"] for w in range(1, 6)] == WINDOW_ROWS
    assert stats["records_read"] == 240 and stats["dropped"] == {}
    assert not (out / "sessions").exists() and not (out / ".scratch").exists()
    for w in range(1, 6):
        frames = {split: _window(out, w, split) for split in SPLITS}
        starts = pd.Timestamp(stats["window_starts"][w - 1]).value
        assert (frames["train"]["window"] == w).all()
        assert frames["train"]["request_ts"].between(starts, starts + 6 * 3600 * 10**9 - 1).all()
        valid = valid_half(frames["train"]["request_id"].to_numpy())
        assert sorted(frames["valid"]["request_id"]) == sorted(frames["train"]["request_id"][valid])
        assert sorted(frames["test"]["request_id"]) == sorted(frames["train"]["request_id"][~valid])


def _event_workflow_schema() -> Schema:
    """The output schema of the event-history workflow (fitted to a schema only, no data)."""
    workflow = build_ranking_workflow("unused", "unused", RankingConfig(), with_bias=True)
    columns = ["request_id", "user_id", "request_ts", "product_id", "window", "click", "order", "position", "page"]
    workflow.fit_schema(Schema([ColumnSchema(c, dtype=np.int64) for c in columns]))
    return workflow.output_schema


def test_schema_names_and_tags_equal_the_event_workflows(schema):
    reference = _event_workflow_schema()
    shared = [c for c in reference.column_names if c in schema.column_names]
    missing = sorted(set(reference.column_names) - set(shared))
    # what JD lacks is the event workflow's dense features (JD brings its own): continuous scalars only
    assert missing == sorted(c for c in reference.column_names
                             if Tags.CONTINUOUS in reference[c].tags and not reference[c].is_list)
    for name in shared:
        ours, theirs = schema[name], reference[name]
        assert set(ours.tags) == set(theirs.tags), name
        assert (ours.is_list, ours.is_ragged) == (theirs.is_list, theirs.is_ragged), name
        assert ours.dtype.element_type == theirs.dtype.element_type, name
        if "domain" in theirs.properties:
            assert ours.properties["domain"]["name"] == theirs.properties["domain"]["name"], name
    for behavior in BEHAVIORS:
        for suffix in ("item_id_seq", "category_seq", "brand_seq", "shop_seq", "time_gap_seq", "time_gap_bucket_seq"):
            assert schema[f"{behavior}_{suffix}"].value_count.max == LENGTHS[behavior]
        assert set(schema[f"{behavior}_shop_seq"].tags) == set(schema[f"{behavior}_brand_seq"].tags)
        assert set(schema[f"{behavior}_time_gap_seq"].tags) == {Tags.CONTINUOUS, Tags.LIST, Tags.SEQUENCE,
                                                           f"behavior_{behavior}"}
    assert set(schema["item_shop"].tags) == set(schema["item_brand"].tags)
    assert schema["item_shop"].properties["domain"]["name"] == "shop"
    dense = [c.name for c in schema.select_by_tag(Tags.CONTINUOUS) if not c.is_list]
    assert dense == list(DENSE_COLUMNS)
    assert schema["position_index"].int_domain.max == 538 + 1 and schema["position_page"].int_domain.max == 54 + 1
    assert "request_id_text" not in schema.column_names  # text: kept in the parquet files only


def _decoder(out: Path, vocabulary: str):
    values = pd.read_parquet(out / "workflow" / "categories" / f"unique.{vocabulary}.parquet")[vocabulary]
    table = dict(zip(values.index, values, strict=True))
    return lambda code: None if code == NULL_CODE else table.get(code, "<oov>" if code == OOV_CODE else "<pad>")


def test_rows_decode_to_the_records(out, raw):
    """Window 1 fitted the vocabularies, so every id of its rows decodes to the record's text."""
    rows = _window(out, 1).set_index("request_id_text")
    decode = {name: _decoder(out, name) for name in ("item", "category", "brand", "shop", "user")}
    columns = {"user_id": "user", "item_id": "item", "item_category": "category", "item_brand": "brand",
               "item_shop": "shop"}
    for behavior in BEHAVIORS:
        columns.update({f"{behavior}_item_id_seq": "item", f"{behavior}_category_seq": "category",
                        f"{behavior}_brand_seq": "brand", f"{behavior}_shop_seq": "shop"})
    categories = set(pd.read_parquet(out / "workflow" / "categories" / "unique.category.parquet")["category"])
    for text, row in rows.iterrows():
        record = raw.loc[text]
        assert row["product_id"] == record["product_id"] and row["request_id"] == record["request_id"]
        for column, vocabulary in columns.items():
            if isinstance(record[column], np.ndarray):
                assert [decode[vocabulary](c) for c in row[column]] == list(record[column]), column
            else:
                assert decode[vocabulary](row[column]) == record[column], column
        for behavior in BEHAVIORS:
            gaps = row[f"{behavior}_time_gap_seq"]
            assert np.array_equal(gaps, record[f"{behavior}_time_gap_seq"])
            # Their log2 buckets, as the event workflow's; an unknown gap (NaN) is 0.
            want = [1 + min(max(int(s), 1).bit_length() - 1, 30) if np.isfinite(s) else 0 for s in gaps]
            assert list(row[f"{behavior}_time_gap_bucket_seq"]) == want
        neighbors = list(record["neighbor_category_seq"])
        codes = list(row["neighbor_category_seq"])
        assert len(codes) == 6 and codes[len(neighbors):] == [PAD_CODE] * (6 - len(neighbors))
        for neighbor, code in zip(neighbors, codes, strict=False):  # logged order, padded at the end
            assert decode["category"](code) == neighbor or (code == OOV_CODE and neighbor not in categories)
        assert (row["position_index"], row["position_page"]) == (record["position"] + 1, record["page"] + 1)
        assert (row["click"], row["order"]) == (record["click"], record["order"])
        assert row["jd_feature_007"] == record["jd_feature_007"]


def test_later_windows_map_unseen_ids_to_oov(out, raw):
    rows = _window(out, 5)
    seen = set(_window(out, 1)["item_id"])
    assert set(rows["item_id"]) - seen <= {OOV_CODE}
    assert (rows["item_id"] == OOV_CODE).sum() > 0
    assert rows["click"].sum() == raw.loc[rows["request_id_text"], "click"].sum()


def test_train_dmt_on_every_window(out, tmp_path):
    from t4r_dmt.commands.train import run as train
    from t4r_dmt.training.arguments import DataArguments, RunTrainingArguments

    data = DataArguments(data=str(out), out=str(tmp_path / "run"), config="dmt")
    args = RunTrainingArguments(output_dir=str(tmp_path / "run" / "trainer"), report_to=[], seed=7,
                                disable_tqdm=True, per_device_train_batch_size=16, per_device_eval_batch_size=64)
    result = train(data, args)
    windows = result["windows"]
    assert [(w["train_window"], w["eval_window"]) for w in windows] == [(1, 2), (2, 3), (3, 4), (4, 5)]
    assert [w["n_rows"] for w in windows] == [len(_window(out, w, "valid")) for w in range(2, 6)]
    for window in windows:
        assert math.isfinite(window["logloss_click"]) and window["logloss_click"] > 0
        assert math.isfinite(window["logloss_order"]) and window["logloss_order"] > 0
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["model"] == "dmt" and len(saved["windows"]) == 4


def test_other_inputs_cannot_be_combined_with_jd(sample, tmp_path):
    with pytest.raises(ValueError, match="--impressions, --workers cannot be used with it"):
        run(PreprocessArguments(events=str(sample), out=str(tmp_path / "D"), format="jd",
                                impressions=str(sample), workers=2))


def test_a_bad_record_leaves_no_output(sample, tmp_path):
    records = [data for _, _, data in iter_records(sample, progress=False)][:3]
    path = write_records(tmp_path / "part-r-00000", records)
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(InputError, match=f"{path}, record 2, field 'data'"):
        run(PreprocessArguments(events=str(path), out=str(tmp_path / "D"), format="jd", window="6h"))
    assert not (tmp_path / "D").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["part-r-00000"]
