"""The fast paths of the ranking preprocessing give the same values as the plain ones they replace.

Block operators against NVTabular's LogOp / Normalize, the executor against merlin's, the as-of searches it
skips against a brute-force loop, brand codes and time-gap buckets against their former implementations, and
the writer's encodings.
"""

from __future__ import annotations

import dask.dataframe as dd
import numpy as np
import nvtabular as nvt
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from merlin.dag.executors import LocalExecutor
from merlin.dag.selector import ColumnSelector
from nvtabular import ops as nvt_ops

from t4r_dmt.compat.merlin_executor import ListSafeExecutor, use_list_safe_executor
from t4r_dmt.preprocess.asof import AsOfIndex
from t4r_dmt.preprocess.history import NO_BRAND, brand_codes
from t4r_dmt.preprocess.lists import block_rows
from t4r_dmt.preprocess.ops import BlockLogOp, BlockNormalize
from t4r_dmt.preprocess.ops.behavior_sequences import time_gap_buckets
from t4r_dmt.preprocess.ops.history_operator import _MEMO_OPERATORS, HistoryOperator, reuse_fit_outputs
from t4r_dmt.preprocess.writer import dictionary_columns, statistics_columns, write_windows


def _dense_frame(rows: int = 500) -> pd.DataFrame:
    """Counts as float64, a float32 block, a constant column and NaNs: (rows, 7)."""
    rng = np.random.default_rng(0)
    counts = pd.DataFrame(rng.poisson(3.0, (rows, 3)).astype(np.float64), columns=["c0", "c1", "c2"])
    scaled = pd.DataFrame(np.abs(rng.normal(2.0, 5.0, (rows, 2))).astype(np.float32), columns=["f0", "f1"])
    extra = pd.DataFrame({"flat": np.full(rows, 7.0), "gaps": np.where(rng.random(rows) < 0.1, np.nan, 1.5)})
    return pd.concat([counts, scaled, extra], axis=1)


def _fitted(op: nvt_ops.Normalize, frame: pd.DataFrame) -> nvt_ops.Normalize:
    op.means = {c: float(frame[c].mean()) for c in frame.columns}
    op.stds = {c: float(frame[c].std()) for c in frame.columns}
    op.stds["flat"] = 0.0  # no spread: only shifted
    return op


@pytest.mark.parametrize("columns", [["c0", "c1", "c2"], ["f1", "c0", "f0", "gaps"], ["c2", "flat"]])
def test_block_log_op_equals_log_op_bit_for_bit(columns):
    frame = _dense_frame()
    selector = ColumnSelector(columns)
    expected = nvt_ops.LogOp().transform(selector, frame.copy())
    before = frame.copy()
    mine = BlockLogOp().transform(selector, frame)
    pd.testing.assert_frame_equal(frame, before)  # the input is left as it was (even a float32 view of it)
    for column in columns:
        assert mine[column].dtype == np.float32
        np.testing.assert_array_equal(mine[column].to_numpy(), expected[column].to_numpy())


@pytest.mark.parametrize("columns", [["c0", "c1", "c2", "f0", "f1", "flat", "gaps"], ["f1", "flat", "c0"]])
def test_block_normalize_equals_normalize_bit_for_bit(columns):
    frame = _dense_frame()
    selector = ColumnSelector(columns)
    expected = _fitted(nvt_ops.Normalize(out_dtype=np.float32), frame).transform(selector, frame.copy())
    before = frame.copy()
    mine = _fitted(BlockNormalize(out_dtype=np.float32), frame).transform(selector, frame)
    pd.testing.assert_frame_equal(frame, before)
    assert list(mine.columns) == columns
    for column in columns:
        assert mine[column].dtype == np.float32
        np.testing.assert_array_equal(mine[column].to_numpy(), expected[column].to_numpy())


def test_block_operators_leave_other_columns_to_nvtabular():
    frame = pd.DataFrame({"n": np.arange(6, dtype=np.int64), "x": np.linspace(0.0, 1.0, 6)})
    selector = ColumnSelector(["n", "x"])
    normalize = BlockNormalize(out_dtype=np.float32)
    normalize.means, normalize.stds = {"n": 2.5, "x": 0.5}, {"n": 1.5, "x": 0.25}
    reference = nvt_ops.Normalize(out_dtype=np.float32)
    reference.means, reference.stds = dict(normalize.means), dict(normalize.stds)
    pd.testing.assert_frame_equal(normalize.transform(selector, frame.copy()),
                                  reference.transform(selector, frame.copy()))  # an integer column: Normalize's path
    lists = pd.DataFrame({"l": pd.Series([np.array([1.0, 2.0]), np.array([3.0])], dtype=object)})
    logged = BlockLogOp().transform(ColumnSelector(["l"]), lists.copy())
    np.testing.assert_allclose(logged["l"].iloc[0], np.log1p([1.0, 2.0]), rtol=1e-6)


def test_block_rows_is_a_view_of_adjacent_columns_of_one_block():
    frame = pd.DataFrame(np.arange(12, dtype=np.float64).reshape(3, 4), columns=list("abcd"))
    rows = block_rows(frame, ["b", "c"])
    assert rows is not None and np.shares_memory(rows, frame.to_numpy())
    assert rows.tolist() == [[1.0, 5.0, 9.0], [2.0, 6.0, 10.0]]
    assert block_rows(frame, ["c", "b"]) is None and block_rows(frame, ["a", "zz"]) is None


def _two_consumer_workflow() -> nvt.Workflow:
    """A node read by two consumers, one of which (LogOp) sets columns on the frame it receives."""
    shared = ["a", "b", "c"] >> nvt_ops.FillMissing(fill_val=0.0)
    logged = shared[["a", "b"]] >> nvt_ops.LogOp()
    kept = shared[["b", "c"]] >> nvt_ops.Rename(postfix="_raw")
    return nvt.Workflow(logged + kept + (shared[["c"]] >> nvt_ops.Rename(postfix="_again")) + ["d"])


def test_list_safe_executor_gives_merlins_outputs():
    frame = pd.DataFrame({"a": [1.0, np.nan, 3.0, 4.0], "b": [0.5, 1.5, np.nan, 2.0], "c": [1.0, 2.0, 3.0, 4.0],
                          "d": np.arange(4)})
    workflow = _two_consumer_workflow()
    workflow.fit(nvt.Dataset(frame, cpu=True))
    graph = workflow.graph
    expected = LocalExecutor().transform(frame.copy(), graph)
    mine = ListSafeExecutor().transform(frame.copy(), graph)
    assert sorted(mine.columns) == sorted(expected.columns)
    pd.testing.assert_frame_equal(mine[list(expected.columns)], expected)


def test_list_safe_executor_runs_each_node_once_per_partition(monkeypatch):
    calls = []
    original = nvt_ops.FillMissing.transform

    def counted(self, col_selector, df):
        calls.append(len(df))
        return original(self, col_selector, df)

    monkeypatch.setattr(nvt_ops.FillMissing, "transform", counted)
    frame = pd.DataFrame({"a": [1.0, np.nan], "b": [0.5, 1.5], "c": [1.0, 2.0], "d": [0, 1]})
    workflow = use_list_safe_executor(_two_consumer_workflow())
    workflow.fit(nvt.Dataset(frame, cpu=True))
    calls.clear()
    out = workflow.transform(nvt.Dataset(frame, cpu=True)).to_ddf().compute()
    assert calls == [2]  # merlin runs the shared node once per consumer: three times
    assert out["a"].tolist() == pytest.approx(np.log1p([1.0, 0.0]).tolist())


class _Doubler(HistoryOperator):
    """A history operator that counts its computations."""

    outputs = {"twice": (np.dtype(np.int64), None)}

    def __init__(self) -> None:
        super().__init__("unused-store")
        self.computed = 0

    def compute(self, df):
        self.computed += 1
        return pd.DataFrame({"twice": df["a"].to_numpy() * 2}, index=df.index)


def test_history_operators_keep_their_last_output_whatever_the_others_compute():
    """Each operator keeps the output of its last input: other operators computing in between (a partition's five
    history operators, or a fit phase) never evict it; a new input replaces it; few operators are kept in all."""
    first, second = pd.DataFrame({"a": [1, 2]}), pd.DataFrame({"a": [3, 4]})
    select = ColumnSelector(["a"])
    kept, others = _Doubler(), [_Doubler() for _ in range(_MEMO_OPERATORS - 1)]
    assert kept.transform(select, first)["twice"].tolist() == [2, 4]
    for other in others:
        other.transform(select, first)
        other.transform(select, second)
    assert kept.transform(select, first)["twice"].tolist() == [2, 4] and kept.computed == 1
    assert kept.transform(select, second)["twice"].tolist() == [6, 8] and kept.computed == 2
    assert kept.transform(select, first)["twice"].tolist() == [2, 4] and kept.computed == 3
    for other in [_Doubler() for _ in range(_MEMO_OPERATORS)]:  # as many operators again: the oldest is dropped
        other.transform(select, first)
    kept.transform(select, first)
    assert kept.computed == 4


def test_a_transform_reads_what_the_fit_computed_once_then_computes_again():
    """Inside ``reuse_fit_outputs``: outputs computed while fitting are read by the transform instead of computed
    again (each once, whatever the order), outputs of the transform itself are not kept, and nothing is kept
    after the context."""
    parts = [pd.DataFrame({"a": [i, i + 1]}) for i in range(3)]
    select = ColumnSelector(["a"])
    op = _Doubler()
    with reuse_fit_outputs() as fitting:
        with fitting():
            for part in parts[:2]:  # two fit phases over the fit windows' partitions
                op.transform(select, part)
            for part in parts[:2]:
                op.transform(select, part)
        assert op.computed == 2
        for part in (parts[2], parts[1], parts[0]):  # the transform, in another order
            op.transform(select, part)
        assert op.computed == 3
        assert op.transform(select, parts[1])["twice"].tolist() == [2, 4] and op.computed == 4  # read once only
        assert op.transform(select, parts[2])["twice"].tolist() == [4, 6] and op.computed == 5  # never kept
    with reuse_fit_outputs() as fitting:
        with fitting():
            op.transform(select, parts[0])
            op.transform(select, parts[1])
    op.transform(select, parts[0])
    assert op.computed == 8  # the context ended: its kept outputs are gone


def test_asof_bounds_skip_only_searches_with_known_answers():
    """Positional indexes (times = row numbers), unknown keys, repeated keys given as (values, index) pairs and
    needles before a group's first row: every bound equals a brute-force count."""
    rng = np.random.default_rng(7)
    for positional in (True, False):
        user = np.sort(rng.integers(0, 6, 80))
        value = rng.integers(0, 5, 80)
        time = np.arange(80) if positional else rng.integers(0, 30, 80)
        index = AsOfIndex([user, value], time)
        q_user, q_value = rng.integers(-1, 8, 50), rng.integers(0, 6, 50)
        times = [rng.integers(-2, 85, 50) for _ in range(3)]
        times[2] = times[0].copy()  # the same needles as the first time array
        distinct, inverse = np.unique(q_user, return_inverse=True)
        for keys in ([q_user, q_value], [(distinct, inverse), q_value]):
            bounds = index.bounds(keys, times)
            for q in range(50):
                group = (user == q_user[q]) & (value == q_value[q])
                for t, end in zip(times, bounds.ends, strict=True):
                    assert end[q] - bounds.group_start[q] == int(np.sum(group & (time < t[q])))
                    if not group.any():
                        assert end[q] == bounds.group_start[q]


def test_brand_codes_hash_each_distinct_text_as_before():
    brands = np.array(["a", None, "b", "a", np.nan, "", "None", 5], dtype=object)
    missing = pd.isna(brands)
    former = pd.util.hash_array(np.where(missing, "", brands).astype(str), categorize=True).view(np.int64)
    former[missing] = NO_BRAND
    assert brand_codes(brands).tolist() == former.tolist()
    assert brand_codes(np.array([None, None], dtype=object)).tolist() == [NO_BRAND, NO_BRAND]
    assert brand_codes(np.array([], dtype=object)).tolist() == []


def test_time_gap_buckets_equal_the_frexp_exponent():
    second = 1_000_000_000
    gaps = np.array([0, 1, 2**63 - 1] + [(2**k + d) * second for k in range(34) for d in (-1, 0, 1)], dtype=np.int64)
    seconds = np.maximum(gaps // second, 1)
    _, exponent = np.frexp(seconds.astype(np.float64))
    assert time_gap_buckets(gaps).tolist() == (1 + np.minimum(exponent.astype(np.int64) - 1, 30)).tolist()


def test_writer_skips_dictionaries_of_floats_and_item_sequences_and_statistics_of_floats(tmp_path):
    schema = pa.schema([("request_id", pa.int64()), ("click_item_id_seq", pa.list_(pa.int64())),
                        ("click_category_seq", pa.list_(pa.int64())), ("dense", pa.float32())])
    assert dictionary_columns(schema) == ["request_id", "click_category_seq.list.element"]
    assert statistics_columns(schema) == ["request_id", "click_item_id_seq.list.element",
                                          "click_category_seq.list.element"]
    frame = pd.DataFrame({"request_id": np.arange(40) // 4,
                          "click_item_id_seq": [np.arange(i % 5) for i in range(40)],
                          "click_category_seq": [np.full(i % 5, 3) for i in range(40)],
                          "dense": np.linspace(0, 1, 40, dtype=np.float32)})
    rows = write_windows(dd.from_pandas(frame, npartitions=1), [1], tmp_path, schema)
    assert rows["1"]["train"] == 40 and rows["1"]["valid"] + rows["1"]["test"] == 40
    written = pq.read_table(tmp_path / "0001" / "train.parquet")
    assert written.equals(pa.Table.from_pandas(frame, schema=schema, preserve_index=False))
    metadata = pq.ParquetFile(tmp_path / "0001" / "train.parquet").metadata.row_group(0)
    encodings = {metadata.column(i).path_in_schema: metadata.column(i).encodings for i in range(4)}
    assert any("DICTIONARY" in e for e in encodings["click_category_seq.list.element"])
    assert not any("DICTIONARY" in e for e in encodings["click_item_id_seq.list.element"])
    assert not any("DICTIONARY" in e for e in encodings["dense"])
    has_statistics = {metadata.column(i).path_in_schema: metadata.column(i).is_stats_set for i in range(4)}
    assert has_statistics == {"request_id": True, "click_item_id_seq.list.element": True,
                              "click_category_seq.list.element": True, "dense": False}
