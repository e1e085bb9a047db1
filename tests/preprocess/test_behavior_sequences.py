"""BehaviorSequences' time-gap lists: the log2 buckets on values, the as-of rule, element-by-element alignment
with the id lists, and the schema the operator gives the column."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from merlin.dag.selector import ColumnSelector
from merlin.schema import ColumnSchema, Schema, Tags

from t4r_dmt.preprocess.history import HistoryStore
from t4r_dmt.preprocess.ops.behavior_sequences import BehaviorSequences, time_gap_buckets
from t4r_dmt.schema import TIME_GAP_BUCKETS, time_gap_bucket_column

SECOND = 1_000_000_000
REQUEST = pd.Timestamp("2020-01-02 12:00:00")


def test_buckets_of_exact_gaps() -> None:
    seconds = np.array([1, 2, 3, 4, 7, 8, 3600, 86_400, 2**30 - 1, 2**30, 2**33])
    assert time_gap_buckets(seconds * SECOND).tolist() == [1, 2, 2, 3, 3, 4, 12, 17, 30, 31, 31]
    # Under a second (sub-second timestamps) is the first bucket, as exactly 1 s is; 0 is never produced.
    assert time_gap_buckets(np.array([1, SECOND // 2, SECOND - 1, 2 * SECOND - 1])).tolist() == [1, 1, 1, 1]
    assert TIME_GAP_BUCKETS - 1 == 31


def test_buckets_equal_the_bit_length_rule_at_every_power_of_two() -> None:
    # floor(log2(s)) = s.bit_length() - 1, checked at 2**k - 1, 2**k, 2**k + 1 where float log2 could round.
    seconds = sorted({max(1, 2**k + d) for k in range(34) for d in (-1, 0, 1)})  # 2**33 s: ~int64 ns
    want = [1 + min(s.bit_length() - 1, TIME_GAP_BUCKETS - 2) for s in seconds]
    assert time_gap_buckets(np.array(seconds, dtype=np.int64) * SECOND).tolist() == want


@pytest.fixture(scope="module")
def operator(tmp_path_factory: pytest.TempPathFactory) -> BehaviorSequences:
    """User 5 viewed items 10..15 at 1 h, 3 s, 2 s, 1 s, 0.5 s and 0 s before ``REQUEST``, and put item 20 in
    the cart 1 day before it."""
    gaps = [pd.Timedelta(hours=1), pd.Timedelta(seconds=3), pd.Timedelta(seconds=2), pd.Timedelta(seconds=1),
            pd.Timedelta(milliseconds=500), pd.Timedelta(0)]
    views = pd.DataFrame({"event_time": [REQUEST - g for g in gaps], "event_type": "view",
                          "product_id": np.arange(10, 16)})
    cart = pd.DataFrame({"event_time": [REQUEST - pd.Timedelta(days=1)], "event_type": "cart", "product_id": [20]})
    events = pd.concat([views, cart], ignore_index=True).assign(
        category_id=lambda f: f["product_id"] + 100, category_code=None, brand="b", price=1.0, user_id=5,
        user_session="s")
    root = tmp_path_factory.mktemp("history")
    HistoryStore.build(events, root, events_per_bucket=100)
    return BehaviorSequences(root, {"click": 10, "cart": 2, "order": 2})


def _rows(operator: BehaviorSequences, users: list[int], times: list[pd.Timestamp]) -> dict[str, list]:
    frame = pd.DataFrame({"user_id": np.array(users, dtype=np.int64),
                          "request_ts": np.array([t.value for t in times], dtype=np.int64)})
    return operator.compute(frame).to_dict("list")


def test_gaps_line_up_with_the_items_and_leave_out_the_request_second(operator: BehaviorSequences) -> None:
    out = _rows(operator, [5, 5, 6], [REQUEST, REQUEST + pd.Timedelta(days=3), REQUEST])
    # At the request: the view at the request time itself is not in the lists (the as-of rule), and each gap
    # is the bucket of its own event: 1 h -> 12, 3 s -> 2, 2 s -> 2, 1 s -> 1, 0.5 s -> 1.
    assert out["click_item_id_seq"][0] == [10, 11, 12, 13, 14]
    assert out["click_time_gap_bucket_seq"][0] == [12, 2, 2, 1, 1]
    assert out["cart_item_id_seq"][0] == [20] and out["cart_time_gap_bucket_seq"][0] == [17]  # 1 day
    # Three days later every view is in, the same-second one too; 3 d = 259,200 s -> 18, 3 d + 1 h -> 19.
    assert out["click_item_id_seq"][1] == [10, 11, 12, 13, 14, 15]
    assert out["click_time_gap_bucket_seq"][1] == [19, 18, 18, 18, 18, 18]
    # A user without history: empty lists, as for the ids.
    assert out["click_time_gap_bucket_seq"][2] == [] and out["order_time_gap_bucket_seq"][0] == []
    for behavior in ("click", "cart", "order"):
        items, gaps = out[f"{behavior}_item_id_seq"], out[f"{behavior}_time_gap_bucket_seq"]
        assert [len(g) for g in gaps] == [len(i) for i in items]
    # Oldest first: the gaps never grow along a list.
    assert all(np.all(np.diff(g) <= 0) for g in out["click_time_gap_bucket_seq"])


def test_time_gap_columns_are_tagged_and_sized_by_the_operator(operator: BehaviorSequences) -> None:
    inputs = Schema([ColumnSchema("user_id", dtype=np.int64), ColumnSchema("request_ts", dtype=np.int64)])
    column = time_gap_bucket_column("cart")
    schema = operator.compute_output_schema(inputs, ColumnSelector(["user_id", "request_ts"]))
    assert set(schema[column].tags) == {Tags.CATEGORICAL, Tags.LIST, Tags.SEQUENCE, "behavior_cart"}
    assert schema[column].int_domain.max == TIME_GAP_BUCKETS - 1
    assert schema[column].value_count.max == 2 and schema[column].dtype.element_type.value == "int"
    assert not schema["cart_item_id_seq"].tags  # the id lists are tagged by SharedCategorify, as before
    with pytest.raises(ValueError, match="unknown behaviour 'like'"):
        time_gap_bucket_column("like")
