"""The ranking workflow against a slow, obviously-correct pandas reference (a loop over impressions).

Every sequence, label and neighbour list of every output row must equal the reference after decoding
through the saved workflow's vocabularies; dense features must equal the reference's values after the
same fill / log / standardisation with statistics of the fit window only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from log_fixtures import CONFIG, LENGTHS, OOV, PAD, T0, make_logs

from t4r_dmt.preprocess.config import COUNT_HORIZONS
from t4r_dmt.preprocess.ops import RATE_COLUMNS, activity_columns, count_columns, interaction_columns
from t4r_dmt.preprocess.ops.interactions import DECAY_DEPTH, NEVER_HOURS
from t4r_dmt.preprocess.pipeline import RankingData, preprocess_ranking
from t4r_dmt.preprocess.workflow import output_columns
from t4r_dmt.schema import BEHAVIOR_EVENTS


@pytest.fixture(scope="module")
def logs():
    return make_logs()


@pytest.fixture(scope="module")
def run(logs, tmp_path_factory):
    events, impressions = logs
    out = tmp_path_factory.mktemp("ranking")
    stats = preprocess_ranking(RankingData(events, impressions), out, CONFIG, progress=False)
    return out, stats


def read_split(out, split: str = "train") -> pd.DataFrame:
    frames = [pd.read_parquet(path) for path in sorted(out.glob(f"ranking/*/{split}.parquet"))]
    return pd.concat(frames, ignore_index=True)


def decoders(out) -> dict[str, dict[int, object]]:
    """Code -> raw value per vocabulary, from the saved workflow's categories."""
    result = {}
    for name in ("item", "category", "brand", "user"):
        table = pd.read_parquet(out / "workflow" / "categories" / f"unique.{name}.parquet")
        result[name] = {0: PAD, 1: None, 2: OOV, **dict(zip(table.index, table[name], strict=True))}
    return result


def reference(events: pd.DataFrame, impressions: pd.DataFrame) -> pd.DataFrame:
    """One row per impression, computed by filtering the whole log for each row (slow, plain)."""
    out = []
    for row in impressions.itertuples(index=False):
        t = row.event_time
        past = events[(events["user_id"] == row.user_id) & (events["event_time"] < t)]
        past = past.sort_values("event_time", kind="stable")
        attrs = events[(events["product_id"] == row.product_id) & (events["event_time"] < t)]
        attrs = attrs.sort_values("event_time", kind="stable")
        latest = attrs.iloc[-1] if len(attrs) else None
        ref = {"request_id": row.request_id, "product_id": row.product_id, "user_id": row.user_id,
               "click": row.click, "order": row.order, "position_index": row.position + 1,
               "position_page": row.page + 1,
               "item_category": -1 if latest is None else latest["category_id"],
               "item_brand": None if latest is None else latest["brand"],
               "item_price": np.nan if latest is None else latest["price"]}
        for behavior, event_type in BEHAVIOR_EVENTS.items():
            done = past[past["event_type"] == event_type]
            kept = done.tail(LENGTHS[behavior])
            ref[f"{behavior}_item_id_seq"] = kept["product_id"].tolist()
            ref[f"{behavior}_category_seq"] = kept["category_id"].tolist()
            ref[f"{behavior}_brand_seq"] = kept["brand"].tolist()
            seconds = ((t - kept["event_time"]) // pd.Timedelta(seconds=1)).tolist()
            ref[f"{behavior}_time_gap_bucket_seq"] = [1 + min(max(s, 1).bit_length() - 1, 30) for s in seconds]
            for name, delta in COUNT_HORIZONS.items():
                ref[f"user_{behavior}_count_{name}"] = int((done["event_time"] >= t - delta).sum())
            ref.update(interactions(behavior, done, t, row.product_id, ref["item_category"], ref["item_brand"]))
            if behavior == "order":
                ref["user_purchase_power"] = done["price"].mean() if len(done) else np.nan
        ref.update(item_rates(events, impressions, t, row.product_id))
        out.append(ref)
    frame = pd.DataFrame(out)
    frame["window"] = (impressions["event_time"].dt.floor("1d") - T0).dt.days.to_numpy() + 1
    neighbors = {}
    for _, group in frame.groupby("request_id"):
        ranked = group.sort_values("position_index")
        cats = ranked["item_category"].tolist()
        for rank, index in enumerate(ranked.index):
            neighbors[index] = [cats[rank + k] if 0 <= rank + k < len(cats) else PAD for k in (-3, -2, -1, 1, 2, 3)]
    frame["neighbor_category_seq"] = pd.Series(neighbors)
    return frame


def interactions(behavior: str, done: pd.DataFrame, t: pd.Timestamp, item: int, category: int,
                 brand: str | None) -> dict[str, float]:
    """The ``Interactions`` features of one row and behaviour, from the behaviour's past events ``done``
    (time-sorted, strictly before t)."""
    ref = {}
    for attribute, field, value in (("item", "product_id", item), ("category", "category_id", category),
                                    ("brand", "brand", brand)):
        known = value is not None and not (attribute == "category" and value < 0)
        match = (done[field] == value).to_numpy() & known
        hits = done[match]
        prefix = f"{behavior}_{attribute}_"
        ref[prefix + "count"] = len(hits)
        for name, delta in COUNT_HORIZONS.items():
            ref[f"{prefix}count_{name}"] = int((hits["event_time"] >= t - delta).sum())
        ref[prefix + "seq_hits"] = int(match[-LENGTHS[behavior]:].sum()) if len(done) else 0
        ref[prefix + "last_match"] = float(len(done) > 0 and bool(match[-1]))
        hours = (t - hits["event_time"].iloc[-1]) / pd.Timedelta(hours=1) if len(hits) else NEVER_HOURS
        ref[prefix + "log_hours_since"] = np.log1p(min(hours, NEVER_HOURS))
        ref[prefix + "never"] = float(len(hits) == 0)
        ages = (t - hits["event_time"].tail(DECAY_DEPTH)) / pd.Timedelta(CONFIG.interaction_decay)
        ref[prefix + "decayed"] = float(np.exp(-ages.to_numpy(float)).sum())
    return ref


def item_rates(events: pd.DataFrame, impressions: pd.DataFrame, t: pd.Timestamp, item: int) -> dict[str, float]:
    """``item_ctr_lift`` / ``item_cvr_lift`` of one row: impressions of whole hours ended ``rate_delay`` before t,
    views and purchases of whole hours ended before t."""
    a = CONFIG.rate_smoothing
    shown = impressions[impressions["event_time"].dt.floor("1h") + pd.Timedelta(hours=1)
                        <= t - pd.Timedelta(CONFIG.rate_delay)]
    logged = events[events["event_time"].dt.floor("1h") + pd.Timedelta(hours=1) <= t]
    views, buys = logged[logged["event_type"] == "view"], logged[logged["event_type"] == "purchase"]

    def lift(hits: float, trials: float, all_hits: float, all_trials: float) -> float:
        prior = all_hits / all_trials if all_trials else 0.0
        return float(np.log((hits + a * prior) / (trials + a)) - np.log(prior)) if prior > 0 else 0.0

    mine = shown[shown["product_id"] == item]
    return {"item_ctr_lift": lift(mine["click"].sum(), len(mine), shown["click"].sum(), len(shown)),
            "item_cvr_lift": lift((buys["product_id"] == item).sum(), (views["product_id"] == item).sum(),
                                  len(buys), len(views))}


@pytest.fixture(scope="module")
def expected(logs, run):
    events, impressions = logs
    frame = reference(events, impressions)
    return frame.sort_values(["request_id", "product_id"]).reset_index(drop=True)


@pytest.fixture(scope="module")
def decoded(run):
    out, _ = run
    frame = read_split(out).sort_values(["request_id", "product_id"]).reset_index(drop=True)
    codes = decoders(out)
    vocabulary_of = {"item_id": "item", "item_category": "category", "item_brand": "brand", "user_id": "user",
                     "neighbor_category_seq": "category"}
    for behavior in BEHAVIOR_EVENTS:
        vocabulary_of.update({f"{behavior}_item_id_seq": "item", f"{behavior}_category_seq": "category",
                              f"{behavior}_brand_seq": "brand"})
    for column, name in vocabulary_of.items():
        mapping = codes[name]
        frame[column] = [
            [mapping[c] for c in value] if isinstance(value, np.ndarray) else mapping[value]
            for value in frame[column]
        ]
    return frame


def _in_vocabulary(value, known: set):
    if value is None or value == PAD:
        return value
    return value if value in known else OOV


def test_every_sequence_label_and_neighbor_list_equals_the_reference(run, expected, decoded):
    out, _ = run
    known = {name: set(v.values()) - {PAD, None, OOV} for name, v in decoders(out).items()}
    assert decoded["request_id"].tolist() == expected["request_id"].tolist()
    for column in ("product_id", "click", "order", "position_index", "position_page", "window"):
        assert decoded[column].tolist() == expected[column].tolist(), column
    vocabulary_of = {"item_id_seq": "item", "category_seq": "category", "brand_seq": "brand"}
    for behavior in BEHAVIOR_EVENTS:
        for suffix, name in vocabulary_of.items():
            column = f"{behavior}_{suffix}"
            want = [[_in_vocabulary(v, known[name]) for v in values] for values in expected[column]]
            assert decoded[column].tolist() == want, column
    for behavior in BEHAVIOR_EVENTS:  # time-gap buckets are final codes: no vocabulary to decode
        column = f"{behavior}_time_gap_bucket_seq"
        assert [list(v) for v in decoded[column]] == expected[column].tolist(), column
    want = [[_in_vocabulary(v, known["category"]) for v in values] for values in expected["neighbor_category_seq"]]
    assert decoded["neighbor_category_seq"].tolist() == want
    assert decoded["item_id"].tolist() == [_in_vocabulary(v, known["item"]) for v in expected["product_id"]]
    assert decoded["item_category"].tolist() == [_in_vocabulary(v, known["category"]) for v in expected["item_category"]]
    assert decoded["item_brand"].tolist() == [_in_vocabulary(v, known["brand"]) for v in expected["item_brand"]]
    assert decoded["user_id"].tolist() == [_in_vocabulary(v, known["user"]) for v in expected["user_id"]]


def test_vocabularies_are_fitted_on_the_first_window_only(run, expected):
    out, stats = run
    fit = expected[expected["window"] == 1]
    items = set(fit["product_id"]).union(*[set(v) for b in BEHAVIOR_EVENTS for v in fit[f"{b}_item_id_seq"]])
    brands = {b for b in set(fit["item_brand"]).union(*[set(v) for v in fit["click_brand_seq"]],
                                                       *[set(v) for v in fit["cart_brand_seq"]],
                                                       *[set(v) for v in fit["order_brand_seq"]]) if b is not None}
    assert set(decoders(out)["item"].values()) - {PAD, None, OOV} == items
    assert set(decoders(out)["brand"].values()) - {PAD, None, OOV} == brands
    assert set(decoders(out)["user"].values()) - {PAD, None, OOV} == set(fit["user_id"])
    assert stats["fit_windows"] == [1] and "windows 1..1 only" in stats["fit_note"]
    assert stats["windows"] == 3
    assert stats["dropped"]["events not used (remove_from_cart)"] > 0


def _standardise(raw: pd.Series, fit: np.ndarray, log: bool, fill: float) -> np.ndarray:
    values = raw.astype(float).fillna(fill).to_numpy()
    if log:
        values = np.log1p(values)
    mean, std = values[fit].mean(), values[fit].std(ddof=1)
    return (values - mean) / std if std > 0 else values - mean


def test_dense_features_use_the_past_and_fit_window_statistics(expected, decoded):
    fit = (expected["window"] == 1).to_numpy()
    for column in activity_columns():
        want = _standardise(expected[column], fit, log=True, fill=0.0)
        np.testing.assert_allclose(decoded[column].to_numpy(), want, rtol=1e-5, atol=1e-5, err_msg=column)
    want = _standardise(expected["item_price"], fit, log=True, fill=0.0)
    np.testing.assert_allclose(decoded["item_log_price"].to_numpy(), want, rtol=1e-5, atol=1e-5)
    category_mean = expected[fit].groupby("item_category")["item_price"].mean()
    ratio = expected["item_price"] / expected["item_category"].map(category_mean)
    want = _standardise(ratio, fit, log=True, fill=1.0)
    np.testing.assert_allclose(decoded["item_price_to_category"].to_numpy(), want, rtol=1e-5, atol=1e-5)


def test_item_rates_use_whole_hours_before_the_request_only(expected, decoded):
    fit = (expected["window"] == 1).to_numpy()
    for column in RATE_COLUMNS:
        want = _standardise(expected[column], fit, log=False, fill=0.0)
        np.testing.assert_allclose(decoded[column].to_numpy(), want, rtol=1e-5, atol=1e-5, err_msg=column)
        assert expected.loc[fit, column].std() > 0, column  # defined (and varying) in the fit window already


def test_interaction_features_equal_the_reference(expected, decoded):
    fit = (expected["window"] == 1).to_numpy()
    logged = set(count_columns())
    for column in interaction_columns():
        want = _standardise(expected[column], fit, log=column in logged, fill=0.0)
        np.testing.assert_allclose(decoded[column].to_numpy(), want, rtol=1e-5, atol=1e-5, err_msg=column)
    # the reference is not degenerate: candidates were viewed before, some most recently
    assert expected["click_item_count"].max() >= 2 and expected["click_category_last_match"].sum() > 0


def test_an_event_in_the_same_second_as_the_request_is_excluded(expected, decoded):
    leak = decoded[decoded["request_id"] == 900].set_index("product_id")
    ref = expected[expected["request_id"] == 900].set_index("product_id")
    # The view one second before is the newest element; the same-second view (the label) is absent.
    sequence = leak.loc[14, "click_item_id_seq"]
    assert sequence[-1] == 13 and 14 not in sequence
    assert sequence == ref.loc[14, "click_item_id_seq"]
    # Its time gap, 1 s, is the last of the aligned gap list: bucket 1.
    gaps = list(leak.loc[14, "click_time_gap_bucket_seq"])
    assert gaps[-1] == 1 and len(gaps) == len(sequence)
    # Dense counts see the earlier view only: 1 view of item 13, none of item 14 before the request.
    assert (ref.loc[13, "click_item_count"], ref.loc[14, "click_item_count"]) == (1, 0)
    assert leak.loc[13, "click_item_count"] > leak.loc[14, "click_item_count"]
    assert (ref.loc[13, "click_item_last_match"], ref.loc[14, "click_item_last_match"]) == (1.0, 0.0)
    assert leak.loc[13, "click_item_last_match"] > leak.loc[14, "click_item_last_match"]
    assert ref.loc[13, "click_item_log_hours_since"] == pytest.approx(np.log1p(1 / 3600))
    earlier_views = (ref.loc[14, "user_click_count_1d"], ref.loc[14, "user_click_count_30d"])
    assert earlier_views[0] >= 1 and earlier_views[0] <= earlier_views[1]


def test_output_files_types_and_splits(run):
    out, stats = run
    for window, counts in stats["rows_per_window"].items():
        folder = out / "ranking" / f"{int(window):04d}"
        train, valid, test = (pd.read_parquet(folder / f"{s}.parquet") for s in ("train", "valid", "test"))
        assert counts == {"train": len(train), "valid": len(valid), "test": len(test)}
        assert set(valid["request_id"]).isdisjoint(test["request_id"])
        assert sorted(pd.concat([valid, test])["request_id"]) == sorted(train["request_id"])
    schema = pq.read_schema(out / "ranking" / "0001" / "train.parquet")
    assert schema.names == output_columns(with_bias=True)
    for column in ("click_item_id_seq", "order_brand_seq", "neighbor_category_seq", "cart_time_gap_bucket_seq"):
        assert pa.types.is_list(schema.field(column).type) and schema.field(column).type.value_type == pa.int64()
    assert schema.field("user_click_count_7d").type == pa.float32()
    assert schema.field("click").type == pa.int64() and schema.field("item_id").type == pa.int64()
    train = read_split(out)
    assert (train["neighbor_category_seq"].map(len) == 6).all()
    for behavior, n in LENGTHS.items():
        assert train[f"{behavior}_item_id_seq"].map(len).max() <= n
    assert not (out / ".scratch").exists()
