"""The JD reader on the real part file of the DMT authors' release (skipped where shared/data lacks it), and its
errors on records written here."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from paths import SHARED_DATA
from tfrecord_fixtures import write_records

from t4r_dmt.data.jd import (
    DENSE_COLUMNS,
    JDReader,
    parse_record,
    request_hash,
)
from t4r_dmt.data.tfrecord import Example, RecordError, iter_records, parse_example

LENGTHS = {"click": 50, "cart": 10, "order": 10}
SAMPLE = SHARED_DATA / "jd_dmt_sample" / "part-r-00000"


@pytest.fixture(scope="module")
def sample() -> Path:
    if not SAMPLE.is_file():
        pytest.skip(f"{SAMPLE} is absent")
    return SAMPLE


@pytest.fixture(scope="module")
def table(sample) -> pa.Table:
    return pa.concat_tables(JDReader(sample, LENGTHS, chunk_size=100, progress=False))


@pytest.fixture(scope="module")
def raw_records(sample) -> list[bytes]:
    return [data for _, _, data in iter_records(sample, progress=False)]


def _strings(values) -> list[str]:
    return [v.decode() for v in values]


def test_the_first_record(table):
    row = table.slice(0, 1).to_pylist()[0]
    # header: expid, pin, expo_time, sid, pos, sku, ... (the authors' header_schema)
    assert row["user_id"] == "jd_6e904e2338b7e"
    assert row["request_id_text"] == "jd_6e904e2338b7e_862593044461177-d81eddd0f7a5_2"
    assert row["request_ts"] == 1_576_716_212 * 10**9  # 2019-12-19 00:43:32 UTC
    assert row["request_id"] == request_hash(np.array([row["request_id_text"]], dtype=object))[0]
    assert (row["product_id"], row["item_id"], row["item_category"], row["item_brand"], row["item_shop"]) == (
        42694196051, "42694196051", "13760", "184144", "753023")
    assert (row["position"], row["page"]) == (162, 17)
    assert (row["click"], row["order"]) == (0, 0)  # mask [1, 0, 0, 0, 0]: an impression
    # clk_seq_len_7d_50 = 50 and ord_seq_len_12m_10 = 10: the lists are that long; the cart list holds 5
    assert [len(row[f"{b}_item_id_seq"]) for b in LENGTHS] == [50, 5, 10]
    assert all(len(row[f"{b}_{a}_seq"]) == len(row[f"{b}_item_id_seq"]) for b in LENGTHS
               for a in ("category", "brand", "shop", "time_gap"))
    assert row["click_item_id_seq"][:3] == ["24741889990", "31802870586", "43737209230"]
    assert row["click_category_seq"][:3] == ["15053", "15053", "15053"]
    assert row["cart_time_gap_seq"] == [6648465.0, 2328859.0, 152730.0, 45998.0, 367.0]  # oldest first
    assert row["order_item_id_seq"][-1] == "53791511812" and row["order_time_gap_seq"][-1] == 365.0
    assert row["neighbor_category_seq"] == ["1593", "1591", "13790", "13760", "5022", "13760"]
    assert row["jd_feature_000"] == pytest.approx(-0.13403472304344177)
    assert row["jd_feature_614"] == pytest.approx(-0.04829670861363411)


def test_labels_lengths_and_nulls_over_the_sample(table, raw_records):
    assert table.num_rows == 240 and table.num_columns == 29 + len(DENSE_COLUMNS)
    click, order = table.column("click").to_numpy(), table.column("order").to_numpy()
    assert (click.sum(), order.sum()) == (22, 10)  # mask slot 2 (label 2) x 12, slot 4 (label 5) x 10
    assert np.all(order <= click)  # an order is also a click
    assert table.column("request_id").to_numpy().dtype == np.int64
    assert len(set(table.column("request_id").to_pylist())) == 240
    for i, data in enumerate(raw_records):
        features = parse_example(data)
        label = features["label"].float_list.value[0]
        header = _strings(features["header"].bytes_list.value[0].split(b"\t"))
        assert click[i] == label and order[i] == (header[9] in ("4", "5"))  # the raw label values
        for behavior, (prefix, horizon) in (("click", ("clk", "7d_50")), ("order", ("ord", "12m_10"))):
            seq_len = features[f"{prefix}_seq_len_{horizon}"].bytes_list.value[0]
            found = len(table.column(f"{behavior}_item_id_seq")[i])
            assert found == (0 if seq_len == b"unknow" else int(float(seq_len)))
        # cart_seq_len_12m_10 is not the cart list's length: it counts the known neighbours (near_expo_seq_*)
        neighbors = features["near_expo_seq_sku"].bytes_list.value
        assert int(features["cart_seq_len_12m_10"].bytes_list.value[0]) == sum(n != b"unknow" for n in neighbors)
        gaps = table.column("click_time_gap_seq")[i].as_py()
        assert gaps == sorted(gaps, reverse=True)  # oldest first: the gaps to the request shrink
    # A behaviour without events is the list [unknow] in JD and empty here.
    empty = {b: sum(len(v) == 0 for v in table.column(f"{b}_item_id_seq").to_pylist()) for b in LENGTHS}
    assert empty == {"click": 9, "cart": 11, "order": 10}
    # unknow inside a list or as a target id is a null; the neighbour lists keep their logged length.
    assert table.column("item_brand").null_count == 1 and table.column("item_shop").null_count == 2
    assert pa.compute.list_flatten(table.column("click_shop_seq")).null_count > 0
    assert {len(v) for v in table.column("neighbor_category_seq").to_pylist()} == {1, 2, 3, 4, 5, 6}


def test_shorter_lengths_keep_the_most_recent_events(sample, table):
    short = pa.concat_tables(JDReader(sample, {"click": 5, "cart": 2, "order": 3}, progress=False))
    for behavior, n in (("click", 5), ("cart", 2), ("order", 3)):
        for column in (f"{behavior}_item_id_seq", f"{behavior}_time_gap_seq"):
            full, cut = table.column(column).to_pylist(), short.column(column).to_pylist()
            assert cut == [v[-n:] for v in full]


def test_chunks_bound_the_rows_of_each_table(sample):
    reader = JDReader(sample, LENGTHS, chunk_size=64, progress=False)
    assert [t.num_rows for t in reader] == [64, 64, 64, 48]
    assert reader.records_read == 240 and reader.dropped == {}


def _rewrite(raw: bytes, change) -> bytes:
    message = Example()
    message.ParseFromString(raw)
    change(message.features.feature)
    return message.SerializeToString()


def _drop(name):
    return lambda features: features.__delitem__(name)


def _set_floats(name, values):
    def change(features):
        del features[name].float_list.value[:]
        features[name].float_list.value.extend(values)
    return change


def _set_bytes(name, values):
    def change(features):
        del features[name].bytes_list.value[:]
        features[name].bytes_list.value.extend(values)
    return change


BAD_RECORDS = [
    (_drop("mask"), "mask", "missing feature", "missing mask"),
    (_drop("clk_seq_sku_7d_50"), "clk_seq_sku_7d_50", "missing feature", "missing clk_seq_sku_7d_50"),
    (_set_floats("mask", [1.0, 0.0, 1.0, 0.0, 0.0]), "mask", "expected a one-hot of 5 classes", "invalid mask"),
    (_set_floats("features", [0.5] * 614), "features", "expected 615 values, found 614", "invalid features"),
    (_set_bytes("header", [b"expid\tjd_x\tyesterday\tsid"]), "header", "not an integer", "invalid header"),
    (_set_bytes("header", [b"expid\tjd_x"]), "header", "found 2 field(s)", "invalid header"),
    (_set_bytes("cart_seq_ts_12m_10", [b"1", b"2"]), "cart_seq_ts_12m_10", "holds 2 values but cart_seq_sku",
     "invalid cart_seq_ts_12m_10"),
    (_set_bytes("pos", [b"unknow"]), "pos", "not an integer", "invalid pos"),
]


@pytest.mark.parametrize("change, field, problem, reason", BAD_RECORDS)
def test_a_bad_record_names_file_record_and_field(raw_records, tmp_path, change, field, problem, reason):
    path = write_records(tmp_path / "part-r-00000", [raw_records[0], _rewrite(raw_records[1], change),
                                                      raw_records[2]])
    with pytest.raises(RecordError, match=re.escape(f"{path}, record 1, field '{field}': ") + ".*"
                       + re.escape(problem)):
        list(JDReader(path, LENGTHS, progress=False))
    reader = JDReader(path, LENGTHS, on_bad_rows="drop", progress=False)
    kept = pa.concat_tables(reader)
    assert kept.column("request_id_text").to_pylist() == [
        _strings(parse_example(raw_records[i])["header"].bytes_list.value[0].split(b"\t"))[3] for i in (0, 2)]
    assert reader.records_read == 3 and reader.dropped == {reason: 1}


def test_a_corrupt_file_raises_even_when_dropping_bad_records(raw_records, tmp_path):
    path = write_records(tmp_path / "part-r-00000", raw_records[:2])
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(RecordError, match=re.escape(f"{path}, record 1, field 'data': ") + ".*truncated file"):
        list(JDReader(path, LENGTHS, on_bad_rows="drop", progress=False))


def test_reader_arguments_are_checked(sample):
    with pytest.raises(ValueError, match="chunk_size must be >= 1"):
        JDReader(sample, LENGTHS, chunk_size=0)
    with pytest.raises(ValueError, match="positive N for each of"):
        JDReader(sample, {"click": 50})
    with pytest.raises(ValueError, match="on_bad_rows"):
        JDReader(sample, LENGTHS, on_bad_rows="skip")


def test_an_unknown_time_gap_is_nan(raw_records):
    features = parse_example(_rewrite(raw_records[0], _set_bytes(
        "cart_seq_ts_12m_10", [b"9", b"unknow", b"7", b"5", b"3"])))
    row = parse_record(features, "f", 0, LENGTHS)
    gaps = row["gaps"]["cart_time_gap_seq"]
    assert gaps[0] == 9.0 and math.isnan(gaps[1]) and gaps[2:] == [7.0, 5.0, 3.0]
