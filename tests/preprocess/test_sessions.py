"""The session ETL (``t4r_dmt.preprocess.sessions``): exact sessions after decoding, windows, splits,
errors, Dask, a T4R XLNet forward pass on the output, and the YOOCHOOSE sample against plain pandas."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from merlin.schema import Tags
from merlin.schema.io.tensorflow_metadata import TensorflowMetadata
from paths import SHARED_DATA

from t4r_dmt.errors import InputError
from t4r_dmt.preprocess.session_events import prepare_events
from t4r_dmt.preprocess.session_workflow import CATEGORICAL_LISTS, CONTINUOUS_LISTS
from t4r_dmt.preprocess.sessions import OUTPUT_COLUMNS, SessionConfig, write_sessions
from t4r_dmt.windows import valid_half

T0 = pd.Timestamp("2024-01-01")  # a Monday
YOOCHOOSE = SHARED_DATA / "yoochoose_rsc15_100k"
CONTINUOUS = ("et_hour_sin-list", "et_hour_cos-list", "et_dayofweek_sin-list", "et_dayofweek_cos-list",
              "time_gap_log_norm-list")

# (user_session, seconds after T0, event_type, product_id, category_id, brand), deliberately unsorted.
HAND_ROWS = [
    ("d", 2 * 86400 + 6 * 3600 + 10, "cart", 17, 300, "bolt"),
    ("a", 23 * 3600 + 30, "view", 10, 100, "acme"),      # repeat of 10: folded into the run
    ("c", 12 * 3600 + 240, "view", 16, 300, "bolt"),
    ("d", 2 * 86400 + 6 * 3600, "view", 15, 300, "bolt"),  # same second as 16 below: input order
    ("d", 2 * 86400 + 6 * 3600, "view", 16, 300, "bolt"),
    ("a", 86400 + 600, "purchase", 12, 200, "bolt"),       # after midnight: still window 1
    ("b", 10 * 3600, "view", 12, 200, "bolt"),
    ("c", 12 * 3600, "view", 13, 300, None),
    ("a", 23 * 3600 + 60, "cart", 10, 100, "acme"),       # repeat of 10: the run becomes a cart
    ("c", 12 * 3600 + 60, "view", 14, 300, None),
    ("a", 23 * 3600, "view", 10, 100, "acme"),
    ("c", 12 * 3600 + 120, "view", 13, 300, None),         # not consecutive: kept
    ("b", 10 * 3600 + 60, "view", 12, 200, "bolt"),        # repeat: b has 1 interaction, dropped
    ("a", 23 * 3600 + 3540, "view", 11, -1, None),
    ("c", 12 * 3600 + 180, "view", 15, 300, "bolt"),
]


def make_events(rows: list[tuple]) -> pd.DataFrame:
    """The canonical events DataFrame of ``rows`` (see HAND_ROWS)."""
    session, seconds, kind, item, category, brand = zip(*rows, strict=True)
    return pd.DataFrame({
        "event_time": T0 + pd.to_timedelta(np.array(seconds), unit="s"),
        "event_type": list(kind),
        "product_id": np.array(item, dtype=np.int64),
        "category_id": np.array(category, dtype=np.int64),
        "category_code": None,
        "brand": np.array(brand, dtype=object),
        "price": 1.0,
        "user_id": np.int64(7),
        "user_session": list(session),
    })


def random_events(n_sessions: int = 240, seed: int = 0) -> pd.DataFrame:
    """Sessions of 1..8 events over 3 days, 40 items, all behaviours, some repeats and null brands."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_sessions):
        t = int(rng.integers(0, 3 * 86400))
        for _ in range(int(rng.integers(1, 9))):
            item = int(rng.integers(1, 41))
            kind = str(rng.choice(["view", "cart", "purchase", "remove_from_cart"], p=[0.7, 0.15, 0.1, 0.05]))
            rows.append((f"s{s}", t, kind, item, 1000 + item % 5, [None, "x", "y"][item % 3]))
            t += int(rng.integers(0, 900))
    return make_events(rows)


def read_split(out: Path, window: str, split: str) -> pd.DataFrame:
    return pd.read_parquet(out / window / f"{split}.parquet")


def decoder(out: Path, column: str) -> pd.Series:
    """code -> raw value, from the saved workflow's vocabulary (the parquet index is the code)."""
    return pd.read_parquet(out / "workflow" / "categories" / f"unique.{column}.parquet")[column]


def decode(codes: list[int], vocabulary: pd.Series) -> list:
    return [None if code == 1 else vocabulary.loc[code] for code in codes]


@pytest.fixture(scope="module")
def hand(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("hand") / "sessions"
    stats = write_sessions(make_events(HAND_ROWS), out, config=SessionConfig(max_length=3))
    return out, stats


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("synthetic") / "sessions"
    return out, write_sessions(random_events(), out, window="1d")


def test_hand_made_sessions_decode_exactly(hand: tuple[Path, dict]) -> None:
    out, _ = hand
    train = read_split(out, "0001", "train")
    items, categories, brands = decoder(out, "item_id"), decoder(out, "category"), decoder(out, "brand")
    behaviours = decoder(out, "event_type")
    got = {
        row["timestamp-first"]: (
            decode(row["item_id-list"], items), decode(row["category-list"], categories),
            decode(row["brand-list"], brands), decode(row["event_type-list"], behaviours),
            row["item_id-count"], row["window"],
        )
        for _, row in train.iterrows()
    }
    start = T0.value // 10**9
    assert list(got) == [start + 12 * 3600, start + 23 * 3600]  # ordered by session start
    # c: 5 interactions (13 again after 14 is not a repeat), truncated to its first 3.
    assert got[start + 12 * 3600] == ([13, 14, 13], [300, 300, 300], [None, None, None],
                                      ["view", "view", "view"], 5, 1)
    # a: view/view/cart of 10 fold into one cart; runs past midnight but belongs to window 1.
    assert got[start + 23 * 3600] == ([10, 11, 12], [100, None, 200], ["acme", None, "bolt"],
                                      ["cart", "view", "purchase"], 3, 1)
    d = read_split(out, "0003", "train")
    assert len(d) == 1
    assert decode(d["item_id-list"][0], items) == [15, 16, 17]  # tie at 06:00 keeps input order
    assert list(d["event_type-list"][0]) == [3, 3, 4]  # fixed codes: view 3, cart 4
    assert list(behaviours.loc[[3, 4, 5, 6]]) == ["view", "cart", "purchase", "remove_from_cart"]
    assert not (out / "0002").exists()


def test_hand_made_time_features(hand: tuple[Path, dict]) -> None:
    out, _ = hand
    d = read_split(out, "0003", "train").iloc[0]
    # 06:00 UTC: a quarter of the day; Wednesday 06:00: (2 + 1/4) / 7 of the week.
    last = 2 * np.pi * (6 * 3600 + 10) / 86400
    np.testing.assert_allclose(d["et_hour_sin-list"], [1.0, 1.0, np.sin(last)], atol=1e-6)
    np.testing.assert_allclose(d["et_hour_cos-list"][:2], [0.0, 0.0], atol=1e-6)
    week = 2 * np.pi * 2.25 / 7
    np.testing.assert_allclose(d["et_dayofweek_sin-list"][:2], [np.sin(week)] * 2, atol=1e-6)
    np.testing.assert_allclose(d["et_dayofweek_cos-list"][:2], [np.cos(week)] * 2, atol=1e-6)
    # Gaps to the previous kept interaction, log1p, standardised over all kept interactions.
    gaps = {"a": [0, 3540, 660], "b": [0], "c": [0, 60, 60, 60, 60], "d": [0, 0, 10]}
    logs = np.log1p(np.concatenate([np.array(g, dtype=float) for g in gaps.values()]))
    mean, std = logs.mean(), logs.std(ddof=1)
    np.testing.assert_allclose(d["time_gap_log_norm-list"], (np.log1p([0, 0, 10]) - mean) / std, rtol=1e-5)
    a = read_split(out, "0001", "train").iloc[1]
    expected = (np.log1p([0, 3540, 660]) - mean) / std
    np.testing.assert_allclose(a["time_gap_log_norm-list"], expected, rtol=1e-5)


def test_hand_made_stats(hand: tuple[Path, dict]) -> None:
    _, stats = hand
    assert stats["events"] == len(HAND_ROWS)
    assert stats["interactions"] == len(HAND_ROWS) - 3
    assert (stats["sessions"], stats["sessions_kept"], stats["sessions_truncated"]) == (4, 3, 1)
    assert stats["dropped"] == {
        "events_consecutive_repeat": 3,
        "sessions_shorter_than_min_length": 1,
        "events_in_sessions_shorter_than_min_length": 1,
        "events_beyond_max_length": 2,
    }
    assert stats["empty_windows"] == [2]
    assert {w: rows["train"] for w, rows in stats["rows_per_window"].items()} == {"0001": 2, "0003": 1}
    for rows in stats["rows_per_window"].values():
        assert rows["valid"] + rows["test"] == rows["train"]


def test_schema_tags_and_domains(hand: tuple[Path, dict]) -> None:
    out, _ = hand
    schema = TensorflowMetadata.from_proto_text_file(str(out), "schema.pbtxt").to_merlin_schema()
    assert schema.column_names == list(OUTPUT_COLUMNS)
    item = schema["item_id-list"]
    assert {Tags.ITEM, Tags.ID, Tags.CATEGORICAL, Tags.LIST} <= set(item.tags)
    assert schema.select_by_tag(Tags.ITEM_ID).column_names == ["item_id-list"]
    assert item.int_domain.max == decoder(out, "item_id").index.max() == 2 + 8  # 8 items
    assert item.value_count.max == 3
    for name in ("category-list", "brand-list", "event_type-list"):
        assert {Tags.CATEGORICAL, Tags.LIST} <= set(schema[name].tags)
    assert schema["event_type-list"].int_domain.max == 6
    for name in CONTINUOUS:
        assert {Tags.CONTINUOUS, Tags.LIST} <= set(schema[name].tags)
    for name in ("session_id", "window", "timestamp-first", "item_id-count"):
        assert not set(schema[name].tags) & {Tags.CATEGORICAL, Tags.CONTINUOUS, Tags.TARGET}
    assert all("cat_path" not in col.properties for col in schema)
    train = read_split(out, "0001", "train")
    assert str(train["item_id-count"].dtype) == "int32"
    assert isinstance(train["et_hour_sin-list"][0][0], np.float32)


def test_valid_test_split(synthetic: tuple[Path, dict]) -> None:
    out, stats = synthetic
    assert sorted(stats["rows_per_window"]) == ["0001", "0002", "0003"]
    for window in stats["rows_per_window"]:
        train, valid, test = (read_split(out, window, s) for s in ("train", "valid", "test"))
        ids = [set(frame["session_id"]) for frame in (train, valid, test)]
        assert ids[1].isdisjoint(ids[2]) and ids[1] | ids[2] == ids[0]
        assert len(ids[0]) == len(train)
        pd.testing.assert_frame_equal(train[valid_half(train["session_id"].to_numpy(), 0)]
                                      .reset_index(drop=True), valid)
        assert (train["window"] == int(window)).all()
        assert train["timestamp-first"].is_monotonic_increasing


def test_valid_half_is_deterministic_and_balanced() -> None:
    ids = np.arange(20_000, dtype=np.int64) * 7919 + 13
    first = valid_half(ids, seed=0)
    assert np.array_equal(first, valid_half(ids.copy(), seed=0))
    assert 0.48 < first.mean() < 0.52
    other = valid_half(ids, seed=1)
    assert 0.4 < (first == other).mean() < 0.6  # another seed is another split


def test_workflow_reloads_and_reproduces(synthetic: tuple[Path, dict]) -> None:
    import nvtabular as nvt

    out, stats = synthetic
    workflow = nvt.Workflow.load(str(out / "workflow"))
    prepared = prepare_events(random_events(), "1d").frame.reset_index(drop=True)
    again = workflow.transform(nvt.Dataset(prepared, cpu=True)).to_ddf().compute()
    assert len(again) == stats["sessions_kept"]
    written = pd.concat([read_split(out, w, "train") for w in stats["rows_per_window"]])
    again = again.set_index("session_id").loc[written["session_id"]]
    for name in ("item_id-list", "event_type-list", "brand-list"):
        assert all(list(x) == list(y) for x, y in zip(written[name], again[name], strict=True))


def test_dask_client_gives_identical_output(synthetic: tuple[Path, dict], tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    serial, _ = synthetic
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                       dashboard_address=None)
    with cluster, distributed.Client(cluster) as client:
        with distributed.get_task_stream(client=client) as tasks:
            stats = write_sessions(random_events(), tmp_path / "sessions", client=client)
        assert len(tasks.data) > 0  # the work ran on the cluster
    for window in stats["rows_per_window"]:
        for split in ("train", "valid", "test"):
            a, b = read_split(serial, window, split), read_split(tmp_path / "sessions", window, split)
            assert a["session_id"].tolist() == b["session_id"].tolist()
            for name in CATEGORICAL_LISTS:
                assert all(np.array_equal(x, y) for x, y in zip(a[name], b[name], strict=True))
            # Normalize's moments are summed per partition: the partitioning (1 vs 2 workers) moves the last
            # float32 bits (which rows happen to agree exactly depends on the input's row order).
            for name in CONTINUOUS_LISTS:
                assert all(np.allclose(x, y, rtol=1e-5, atol=1e-6) for x, y in zip(a[name], b[name], strict=True))


def test_t4r_xlnet_builds_from_schema_and_runs(synthetic: tuple[Path, dict]) -> None:
    torch = pytest.importorskip("torch")
    tr = pytest.importorskip("transformers4rec.torch")
    from transformers4rec.torch.utils.data_utils import MerlinDataLoader

    out, _ = synthetic
    torch.manual_seed(0)
    schema = TensorflowMetadata.from_proto_text_file(str(out), "schema.pbtxt").to_merlin_schema()
    inputs = tr.TabularSequenceFeatures.from_schema(schema, max_sequence_length=20, continuous_projection=16,
                                                    d_output=32, masking="mlm")
    config = tr.XLNetConfig.build(d_model=32, n_head=2, n_layer=1, total_seq_length=20)
    body = tr.SequentialBlock(inputs, tr.MLPBlock([32]), tr.TransformerBlock(config, masking=inputs.masking))
    model = tr.Model(tr.Head(body, tr.NextItemPredictionTask(weight_tying=True), inputs=inputs))
    loader = MerlinDataLoader.from_schema(schema, str(out / "0001" / "train.parquet"), batch_size=8,
                                          max_sequence_length=20, shuffle=False)
    x, y = next(iter(loader))
    first = read_split(out, "0001", "train")["item_id-list"][0]
    assert x["item_id-list"].shape == (8, 20)
    assert x["item_id-list"][0, : len(first)].tolist() == list(first)
    assert x["item_id-list"][0, len(first):].eq(0).all()
    model.train()
    loss = model(x, targets=y, training=True)["loss"]
    assert torch.isfinite(loss)
    n_items = schema["item_id-list"].int_domain.max + 1
    assert abs(loss.item() - np.log(n_items)) < 1.0  # an untrained model is near-uniform
    model.eval()
    with torch.no_grad():
        assert model(x).shape == (8, n_items)


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        (lambda e: e.iloc[:0], InputError, "no events"),
        (lambda e: e.drop(columns="user_session"), InputError, "column 'user_session'.*missing"),
        (lambda e: e.assign(event_time=e["event_time"].astype(str)), InputError,
         "column 'event_time'.*datetime64"),
        (lambda e: e.assign(product_id=e["product_id"].astype(float)), InputError,
         "column 'product_id'.*integer"),
        (lambda e: e.assign(user_session=[None] + list(e["user_session"][1:])), InputError,
         "column 'user_session', row 0: must not be null"),
        (lambda e: e.assign(category_id=pd.array([1, None] + [1] * (len(e) - 2), dtype="Int64")), InputError,
         "column 'category_id', row 1: must not be null"),
        (lambda e: e.assign(event_type=["view"] * 3 + ["click"] + ["view"] * (len(e) - 4)), InputError,
         "column 'event_type', row 3: unknown behaviour.*'click'"),
        (lambda e: e.assign(user_session=[str(i) for i in range(len(e))]), InputError,
         "no session has at least min_length=2"),
        (lambda e: e.iloc[[0]], InputError, "no session has at least"),
    ],
)
def test_bad_events(change, error, match, tmp_path: Path) -> None:
    with pytest.raises(error, match=match):
        write_sessions(change(make_events(HAND_ROWS)), tmp_path / "out")


def test_events_must_be_a_dataframe(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="pandas DataFrame"):
        write_sessions(make_events(HAND_ROWS).to_dict(), tmp_path / "out")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"window": "fortnight"}, "not a pandas offset alias"),
        ({"window": "1W"}, "fixed length"),
        ({"window": "1M"}, "fixed length"),
        ({"window": "0h"}, "must be a positive duration"),
        ({"min_length": 1}, "min_length must be >= 2"),
        ({"max_length": 2, "min_length": 3}, r"max_length \(2\) must be >= min_length \(3\)"),
        ({"freq_threshold": -1}, "freq_threshold must be >= 0"),
        ({"split_seed": -2}, "split_seed must be >= 0"),
    ],
)
def test_bad_config(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SessionConfig(**kwargs)


def test_bad_window_argument(tmp_path: Path) -> None:
    events = make_events(HAND_ROWS)
    with pytest.raises(ValueError, match="not a pandas offset alias"):
        write_sessions(events, tmp_path / "a", window="soon")
    with pytest.raises(ValueError, match="disagrees with config.window"):
        write_sessions(events, tmp_path / "b", window="6h", config=SessionConfig(window="1d"))
    with pytest.raises(ValueError, match=r"gives 15841 windows \(at most 9999\)"):
        write_sessions(events, tmp_path / "c", window="10s")


def test_output_folder_must_be_empty(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.parquet").write_text("x")
    with pytest.raises(FileExistsError, match="not empty"):
        write_sessions(make_events(HAND_ROWS), tmp_path / "out")


def test_freq_threshold_maps_rare_items_to_oov(tmp_path: Path) -> None:
    write_sessions(make_events(HAND_ROWS), tmp_path / "out", config=SessionConfig(freq_threshold=2))
    # Interactions per item after repeat removal (dropped and truncated sessions count too):
    # 12, 13, 15, 16 twice; 10, 11, 14, 17 once -> out of vocabulary (code 2).
    items = decoder(tmp_path / "out", "item_id")
    assert sorted(items) == [12, 13, 15, 16]
    a = read_split(tmp_path / "out", "0001", "train").iloc[1]
    assert decode(a["item_id-list"][2:], items) == [12]
    assert list(a["item_id-list"][:2]) == [2, 2]


@pytest.mark.skipif(not YOOCHOOSE.exists(), reason="shared YOOCHOOSE sample not available")
def test_yoochoose_sample_matches_pandas(tmp_path: Path) -> None:
    raw = pd.read_csv(YOOCHOOSE / "yoochoose-clicks-100k_train_full.txt", sep="\t")
    events = pd.DataFrame({
        "event_time": pd.to_datetime(raw["Time"], unit="s"), "event_type": "view",
        "product_id": raw["ItemId"].astype(np.int64), "category_id": np.int64(-1), "category_code": None,
        "brand": None, "price": np.nan, "user_id": raw["SessionId"].astype(np.int64),
        "user_session": raw["SessionId"].astype(str),
    })
    stats = write_sessions(events, tmp_path / "sessions")

    # The same thing in a few lines of pandas.
    df = events.sort_values(["user_session", "event_time"], kind="stable")
    same_session = df["user_session"] == df["user_session"].shift()
    repeat = same_session & (df["product_id"] == df["product_id"].shift())
    df = df[~repeat]
    per_session = df.groupby("user_session")["event_time"].agg(["size", "min"])
    kept = per_session[per_session["size"] >= 2]
    day = kept["min"].dt.floor("1d")
    windows = ((day - events["event_time"].min().floor("1d")).dt.days + 1).value_counts().sort_index()

    assert stats["interactions"] == len(df)
    assert stats["sessions"] == len(per_session) == 17_794
    assert stats["sessions_kept"] == len(kept)
    assert {w: rows["train"] for w, rows in stats["rows_per_window"].items()} == {
        f"{w:04d}": n for w, n in windows.items()
    }
    train = pd.concat([read_split(tmp_path / "sessions", w, "train") for w in stats["rows_per_window"]])
    assert train["item_id-count"].sum() == kept["size"].sum()
    assert train["item_id-list"].map(len).sum() == np.minimum(kept["size"], 20).sum()
    assert set(np.concatenate(train["category-list"].to_numpy())) == {1}  # no categories: all null


def test_all_null_category_and_brand_encode_as_null(tmp_path: Path) -> None:
    # Stock Categorify fails on an all-null column (no vocabulary file, IndexError on the partition).
    events = make_events(HAND_ROWS).assign(category_id=np.int64(-1), brand=None)
    write_sessions(events, tmp_path / "out")
    train = read_split(tmp_path / "out", "0001", "train")
    assert set(np.concatenate(train["category-list"].to_numpy())) == {1}
    assert set(np.concatenate(train["brand-list"].to_numpy())) == {1}
    assert decoder(tmp_path / "out", "brand").empty


@pytest.mark.parametrize("aggs", [
    {"item": ["list", "count"], "t": ["first", "last"], "v": ["list"]},
    {"item": ["list"], "v": ["sum"]},  # "sum": the stock path
])
def test_sorted_groupby_equals_stock_groupby(aggs: dict) -> None:
    from merlin.dag import ColumnSelector
    from nvtabular import ops

    from t4r_dmt.preprocess.session_groupby import SortedGroupby

    rng = np.random.default_rng(1)
    df = pd.DataFrame({"key": rng.integers(0, 30, 400), "t": rng.permutation(400),
                       "item": rng.integers(0, 9, 400), "v": rng.random(400).astype(np.float32)})
    selector = ColumnSelector(["key", "t", "item", "v"])
    kwargs = {"groupby_cols": ["key"], "sort_cols": ["t"], "aggs": aggs, "name_sep": "-"}
    fast = SortedGroupby(**kwargs).transform(selector, df)
    stock = ops.Groupby(**kwargs).transform(selector, df)
    assert sorted(fast.columns) == sorted(stock.columns)
    for name in stock.columns:
        if stock[name].dtype == object:
            assert all(list(x) == list(y) for x, y in zip(fast[name], stock[name], strict=True)), name
        else:
            assert fast[name].dtype == stock[name].dtype, name
            np.testing.assert_allclose(fast[name], stock[name], rtol=1e-6)


def test_session_hash_collision_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from t4r_dmt.preprocess import session_events

    monkeypatch.setattr(session_events.pd.util, "hash_array", lambda values: np.zeros(len(values), np.uint64))
    with pytest.raises(RuntimeError, match="hash to the same session_id"):
        session_events.session_hash(pd.Series(["a", "b"]))


def test_split_session_is_detected() -> None:
    from t4r_dmt.preprocess.sessions import _check_sessions

    prepared = prepare_events(make_events(HAND_ROWS), "1d")
    per_session = prepared.frame.groupby("session_id")["window"].agg(["first", "size"]).reset_index()
    sessions = per_session[per_session["size"] >= 2].rename(columns={"first": "window"})
    assert len(sessions) == 3
    _check_sessions(sessions, prepared, min_length=2)  # the right sessions pass
    with pytest.raises(RuntimeError, match="split across partitions"):
        _check_sessions(pd.concat([sessions, sessions.iloc[[0]]]), prepared, min_length=2)
    expected = r"wrote \[0, 1, 0, 1\] sessions per window, expected \[0, 2, 0, 1\]"
    with pytest.raises(RuntimeError, match=expected):
        _check_sessions(sessions.iloc[1:], prepared, min_length=2)
