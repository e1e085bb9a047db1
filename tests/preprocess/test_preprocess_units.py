"""Unit tests of the ranking preprocessing pieces: as-of primitives, windows, arguments, sampling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from merlin.dag.selector import ColumnSelector

from t4r_dmt.errors import InputError
from t4r_dmt.preprocess.arguments import PreprocessArguments
from t4r_dmt.preprocess.asof import asof_bounds, dense_rank, gather_ranges, unique_queries
from t4r_dmt.preprocess.candidates import impression_candidates
from t4r_dmt.preprocess.config import RankingConfig
from t4r_dmt.preprocess.lists import flat_to_list, list_to_flat
from t4r_dmt.preprocess.negatives import _draw, _window_candidates
from t4r_dmt.preprocess.ops.shared_categorify import SharedCategorify, _encode
from t4r_dmt.windows import assign_windows, valid_half, window_delta


def test_dense_rank_orders_tuples_lexicographically():
    a = np.array([2, 1, 2, 1, 2])
    b = np.array([5, 9, 5, 1, 0])
    ranks, n = dense_rank(a, b)
    assert n == 4
    assert ranks.tolist() == [3, 1, 3, 0, 2]  # (1,1) < (1,9) < (2,0) < (2,5)
    with pytest.raises(ValueError, match="at least one key"):
        dense_rank()


def test_asof_bounds_match_a_brute_force_loop():
    rng = np.random.default_rng(3)
    hist_user = rng.integers(0, 4, 60)
    hist_time = rng.integers(0, 20, 60)
    q_user = rng.integers(0, 5, 40)  # user 4 has no history
    q_time = rng.integers(0, 22, 40)
    bounds = asof_bounds([hist_user], hist_time, [q_user], [q_time, q_time - 5])
    for i in range(40):
        mine = bounds.order[bounds.group_start[i] : bounds.ends[0][i]]
        expected = [j for j in np.argsort(hist_time, kind="stable")
                    if hist_user[j] == q_user[i] and hist_time[j] < q_time[i]]
        assert mine.tolist() == expected  # strictly before, oldest first, ties in input order
        recent = bounds.ends[0][i] - bounds.ends[1][i]
        assert recent == sum((hist_user == q_user[i]) & (hist_time >= q_time[i] - 5) & (hist_time < q_time[i]))
    with pytest.raises(ValueError, match="history key columns"):
        asof_bounds([hist_user], hist_time, [], [q_time])
    with pytest.raises(ValueError, match="query-time"):
        asof_bounds([hist_user], hist_time, [q_user], [])


def test_gather_ranges_and_unique_queries():
    rows, offsets = gather_ranges(np.array([10, 11, 12, 13]), np.array([1, 0, 3]), np.array([3, 0, 4]))
    assert rows.tolist() == [11, 12, 13] and offsets.tolist() == [0, 2, 2, 3]
    (u, t), inverse = unique_queries(np.array([5, 5, 6, 5]), np.array([1, 1, 1, 2]))
    assert list(zip(u[inverse], t[inverse], strict=True)) == [(5, 1), (5, 1), (6, 1), (5, 2)]
    assert len(u) == 3


def test_list_columns_round_trip_even_with_equal_lengths():
    values, offsets = np.arange(6), np.array([0, 2, 4, 6])
    series = flat_to_list(values, offsets)
    assert [list(row) for row in series] == [[0, 1], [2, 3], [4, 5]]
    back_values, back_offsets = list_to_flat(series)
    assert back_values.tolist() == values.tolist() and back_offsets.tolist() == offsets.tolist()
    empty = flat_to_list(np.zeros(0, np.int64), np.zeros(3, np.int64))
    assert [len(row) for row in empty] == [0, 0]
    assert list_to_flat(empty)[0].dtype == np.int64


def test_list_columns_are_arrow_backed_and_keep_string_nulls():
    offsets = np.array([0, 2, 2, 4])
    series = flat_to_list(np.array(["a", None, "b", "c"], dtype=object), offsets)
    assert isinstance(series.dtype, pd.ArrowDtype)  # two buffers, no Python object per row
    assert series.tolist() == [["a", None], [], ["b", "c"]]
    values, back = list_to_flat(series)
    assert values.tolist() == ["a", None, "b", "c"] and back.tolist() == offsets.tolist()
    # Object leaves Arrow would retype (ints with None would become floats) stay numpy arrays.
    mixed = flat_to_list(np.array([1, None, 2], dtype=object), np.array([0, 2, 3]))
    assert mixed.dtype == object and [list(row) for row in mixed] == [[1, None], [2]]
    only_nulls = flat_to_list(np.array([None], dtype=object), np.array([0, 0, 1]))
    assert only_nulls.tolist() == [[], [None]]


def test_arrow_and_object_list_columns_encode_alike(tmp_path):
    vocabulary = pd.DataFrame({"brand": ["x", "y"]}, index=pd.RangeIndex(3, 5))
    vocabulary.to_parquet(tmp_path / "unique.brand.parquet")
    op = SharedCategorify({"brand": ["item_brand", "brand_seq"]})
    op.categories = {"brand": str(tmp_path / "unique.brand.parquet")}
    rows = [["y", None, "z"], [], ["x"]]
    arrow = flat_to_list(np.array(["y", None, "z", "x"], dtype=object), np.array([0, 3, 3, 4]))
    objects = pd.Series([np.array(r, dtype=object) for r in rows], dtype=object)
    for seq in (arrow, objects):
        frame = pd.DataFrame({"item_brand": np.array(["x", None, "q"], dtype=object), "brand_seq": seq})
        out = op.transform(ColumnSelector(["item_brand", "brand_seq"]), frame)
        assert out["item_brand"].tolist() == [3, 1, 2]
        assert [list(r) for r in out["brand_seq"]] == [[4, 1, 2], [], [3]]


def test_encode_maps_nulls_to_1_and_unknowns_to_2():
    vocabulary = (pd.Index(["a", "b"]), np.array([3, 4]))
    assert _encode(np.array(["b", None, "z", "a"], dtype=object), vocabulary).tolist() == [4, 1, 2, 3]
    with pytest.raises(ValueError, match="more than one vocabulary"):
        SharedCategorify({"x": ["a", "b"], "y": ["b"]})
    with pytest.raises(ValueError, match="no columns"):
        SharedCategorify({"x": []})


def test_windows_floor_and_number_from_one():
    times = pd.to_datetime(["2020-01-01 23:59:59", "2020-01-03 00:00:00", "2020-01-01 00:00:00"])
    numbers, starts = assign_windows(times.values.view(np.int64), "1d")
    assert numbers.tolist() == [1, 3, 1]
    assert [str(s.date()) for s in starts] == ["2020-01-01", "2020-01-02", "2020-01-03"]
    assert window_delta("6h") == pd.Timedelta(hours=6)
    with pytest.raises(ValueError, match="must be a fixed length"):
        window_delta("1M")
    with pytest.raises(ValueError, match="not a pandas offset alias"):
        window_delta("fortnight")
    with pytest.raises(ValueError, match="must be a positive duration"):
        window_delta("0d")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fit_windows": 0}, "fit_windows must be >= 1"),
        ({"click_length": 0}, "click_length must be >= 1"),
        ({"freq_threshold": -1}, "freq_threshold must be >= 0"),
        ({"negatives": 0}, "negatives must be >= 1"),
        ({"rate_smoothing": 0.0}, "rate_smoothing must be > 0"),
        ({"events_per_bucket": 0}, "events_per_bucket must be >= 1"),
        ({"window": "1M"}, "must be a fixed length"),
    ],
)
def test_ranking_config_rejects_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RankingConfig(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"on_bad_rows": "skip"}, "on_bad_rows must be one of"),
        ({"workers": -1}, "workers must be >= 0"),
        ({"workers": 2, "scheduler": "tcp://x:1"}, "not both"),
        ({"page_size": 0}, "page_size must be >= 1"),
        ({"cart_length": 0}, "cart_length must be >= 1"),
    ],
)
def test_arguments_reject_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PreprocessArguments(events="e.parquet", out="o", **kwargs)


def _impressions(**overrides):
    frame = pd.DataFrame(
        {
            "request_id": [1, 1, 2],
            "user_id": [7, 7, 8],
            "event_time": pd.to_datetime(["2020-01-01 10:00"] * 2 + ["2020-01-01 11:00"]),
            "product_id": [1, 2, 1],
            "position": [0, 1, 0],
            "page": [0, 0, 0],
            "click": [1, 0, 0],
            "order": [0, 0, 0],
        }
    )
    return frame.assign(**overrides)


def test_impression_candidates_validate_the_log():
    frame = impression_candidates(_impressions().drop(columns="page"))
    assert frame["page"].tolist() == [0, 0, 0]
    assert frame["request_ts"].dtype == np.int64
    with pytest.raises(InputError, match="imp.parquet, column 'position': required impression column"):
        impression_candidates(_impressions().drop(columns="position"), source="imp.parquet")
    with pytest.raises(InputError, match="no rows"):
        impression_candidates(_impressions().iloc[:0])
    with pytest.raises(InputError, match=r"column 'request_id': 1 request\(s\) mix several users.*value: 1"):
        impression_candidates(_impressions(user_id=[7, 9, 8]))


def test_negatives_exclude_the_positive_and_never_repeat():
    rng = np.random.default_rng(0)
    pool = np.arange(1, 8)
    prob = np.r_[0.7, np.full(6, 0.05)]  # item 1 dominates: many collisions to redraw
    positive = np.ones(200, dtype=np.int64)
    sampled, keep = _draw(pool, prob, positive, 4, rng)
    assert keep.all()
    assert not (sampled == 1).any()
    assert all(len(set(row)) == 4 for row in sampled)


def test_window_candidates_follow_the_documented_scheme():
    frame, dropped = _window_candidates(
        request_id=np.array([1, 2, 3]), user=np.array([5, 5, 6]), time=np.array([10, 20, 30]),
        item=np.array([1, 2, 1]), ordered=np.array([1, 0, 0]), window=2, negatives=4,
        rng=np.random.default_rng(0),
    )
    # Two distinct items in the window: one negative per request can be drawn, three cannot.
    assert dropped == {"negatives not drawn (window has too few distinct items)": 9}
    assert frame["request_id"].tolist() == [1, 2, 3, 1, 2, 3]
    assert frame["product_id"].tolist() == [1, 2, 1, 2, 1, 2]
    assert frame["click"].tolist() == [1, 1, 1, 0, 0, 0]
    assert frame["order"].tolist() == [1, 0, 0, 0, 0, 0]
    assert (frame["window"] == 2).all()


def test_valid_test_split_is_a_stable_half():
    ids = np.arange(1, 2001)
    valid = valid_half(ids)
    assert 0.45 < valid.mean() < 0.55
    assert (valid_half(ids) == valid).all()


def test_shared_categorify_counts_every_occurrence_for_the_threshold(tmp_path):
    import nvtabular as nvt
    from merlin.io import Dataset

    frame = pd.DataFrame({"item_id": ["a", "b", "c"]})
    frame["seq"] = [np.array(v, dtype=object) for v in (["b", "d"], [], ["d", "e", None])]
    op = SharedCategorify({"item": ["item_id", "seq"]}, freq_threshold=2, out_path=str(tmp_path))
    with pytest.raises(RuntimeError, match="not fitted yet"):
        op.encode("item", np.array(["a"], dtype=object))
    workflow = nvt.Workflow(["item_id", "seq"] >> op)
    workflow.fit(Dataset(frame, cpu=True))
    out = workflow.transform(frame)
    vocabulary = pd.read_parquet(tmp_path / "categories" / "unique.item.parquet")["item"]
    decode = {**dict(zip(vocabulary.index, vocabulary, strict=True)), 1: "null", 2: "oov"}
    # Counts over the target and every sequence position: b and d twice, the rest once.
    assert sorted(vocabulary) == ["b", "d"]
    assert [decode[c] for c in out["item_id"]] == ["oov", "b", "oov"]
    assert [[decode[c] for c in row] for row in out["seq"]] == [["b", "d"], [], ["d", "oov", "null"]]
    with pytest.raises(ValueError, match=r"input lacks columns \['seq'\]"):
        op.fit(ColumnSelector(["item_id"]), None)


def test_operators_reject_bad_settings(tmp_path):
    from t4r_dmt.preprocess.history import HistoryStore
    from t4r_dmt.preprocess.ops import BehaviorSequences, BiasFeatures, ItemRates

    with pytest.raises(ValueError, match=r"unknown behaviours \['like'\]"):
        BehaviorSequences(tmp_path, {"like": 5})
    with pytest.raises(ValueError, match="smoothing must be > 0"):
        ItemRates(tmp_path, 0.0)
    with pytest.raises(ValueError, match="vocabulary 'colour' is not one of"):
        BiasFeatures(SharedCategorify({"category": ["c"]}), 3, 1, vocabulary="colour")
    with pytest.raises(FileNotFoundError, match="event-history file .*item_asof.parquet is missing"):
        HistoryStore(tmp_path).item_table()
