"""The on-disk event history that the as-of operators read, one user bucket at a time.

Layout of a store folder (bundled into ``DIR/workflow/history/`` by ``nvt.Workflow.save``)::

    meta.json                 {"n_buckets": B, "behaviors": {...}}
    events/bucket-00000.parquet ...   behaviour events of the users hashed to that bucket, sorted by
                              (user_id, time, then the canonical tie-break of same-time events:
                              t4r_dmt.data.canonical_order): user_id, ts (int64 ns), behavior (0 click, 1 cart,
                              2 order), product_id, category_id, brand, price
    item_asof.parquet         item attribute change points (product_id, ts, category_id, brand, price),
                              sorted by (product_id, ts): a row is kept only when an attribute changed
    items.parquet             optional static items file (fallback for items never seen in events)
    item_event_hours.parquet  views / purchases per (product_id, hour) of the event log
    item_impression_hours.parquet   impressions / clicks per (product_id, hour) of the ranking rows

Users are hashed into ``B = ceil(events / events_per_bucket)`` buckets; ranking rows are partitioned
by the same hash, so one partition only ever loads one bucket (bounded memory, and every Dask worker
reads what it needs from disk instead of receiving the whole log).
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from t4r_dmt.data.canonical import canonical_rank
from t4r_dmt.preprocess.asof import AsOfIndex
from t4r_dmt.preprocess.lists import arrow_leaves, to_numpy
from t4r_dmt.schema import BEHAVIOR_EVENTS, BEHAVIORS

HOUR_NS = 3_600_000_000_000
#: Code of a missing brand in ``brand_codes``: matches nothing (callers mask it out).
NO_BRAND = -1


def user_bucket(user_ids: np.ndarray, n_buckets: int) -> np.ndarray:
    """Bucket of each user: a stable hash (the same in every process) modulo ``n_buckets``."""
    hashed = pd.util.hash_array(np.asarray(user_ids, dtype=np.int64), categorize=False)
    return (hashed % np.uint64(n_buckets)).astype(np.int64)


class _Indexed:
    """Lazily built, cached ``AsOfIndex`` objects over a table's key fields (the table is cached per
    process, so each index is sorted once per bucket and reused by every partition and window)."""

    time: np.ndarray
    _indexes: dict[tuple[str, ...], AsOfIndex]

    def index(self, *fields: str) -> AsOfIndex:
        if fields not in self._indexes:
            self._indexes[fields] = AsOfIndex([getattr(self, name) for name in fields], self.time)
        return self._indexes[fields]


@dataclass(frozen=True)
class BehaviorEvents(_Indexed):
    """One behaviour's events of one bucket, sorted by (user, time); arrays of shape (E,)."""

    user: np.ndarray
    time: np.ndarray
    product: np.ndarray
    category: np.ndarray
    brand: np.ndarray  # object: str or None
    price: np.ndarray
    _indexes: dict[tuple[str, ...], AsOfIndex] = field(default_factory=dict, compare=False, repr=False)
    _arrow: dict[str, pa.Array | None] = field(default_factory=dict, compare=False, repr=False)

    def position_index(self, field: str) -> AsOfIndex:
        """An ``AsOfIndex`` over ``(user, field)`` whose "time" is the row index (rows are sorted by user, time and
        the canonical tie-break, so within a user a smaller row index is an earlier event); cached."""
        key = ("user", field, "@row")
        if key not in self._indexes:
            user, time = self.user, self.time
            if not np.all((user[1:] > user[:-1]) | ((user[1:] == user[:-1]) & (time[1:] >= time[:-1]))):
                raise ValueError("behaviour events are not sorted by (user, time): the history store is corrupt")
            self._indexes[key] = AsOfIndex([user, getattr(self, field)], np.arange(len(user)))
        return self._indexes[key]

    @functools.cached_property
    def brand_code(self) -> np.ndarray:
        """``brand`` as int64 codes (:func:`brand_codes`), computed once per bucket; (E,)."""
        return brand_codes(self.brand)

    def arrow_brand(self) -> pa.Array | None:
        """``brand`` as an Arrow string array (built once per bucket and cached), so that sequences
        gather brands as Arrow strings instead of Python objects; None if they are not all strings."""
        if "brand" not in self._arrow:
            self._arrow["brand"] = arrow_leaves(self.brand)
        return self._arrow["brand"]


@dataclass(frozen=True)
class ItemTable(_Indexed):
    """Item attribute change points sorted by (product, time), arrays of shape (C,)."""

    product: np.ndarray
    time: np.ndarray
    category: np.ndarray
    brand: np.ndarray
    price: np.ndarray
    _indexes: dict[tuple[str, ...], AsOfIndex] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class ItemHourCounts(_Indexed):
    """Per (product, hour): impressions and clicks of the ranking rows, views and purchases of the event log;
    arrays of shape (P,). ``time`` is the hour number ``floor(ns / HOUR_NS)``. ``expected_clicks``: the
    impressions' summed position click rates (``candidates.item_hour_counts``), None without positions."""

    product: np.ndarray
    time: np.ndarray
    impressions: np.ndarray
    clicks: np.ndarray
    views: np.ndarray
    orders: np.ndarray
    expected_clicks: np.ndarray | None = None
    _indexes: dict[tuple[str, ...], AsOfIndex] = field(default_factory=dict, compare=False, repr=False)
    _sums: dict[str, np.ndarray] = field(default_factory=dict, compare=False, repr=False)

    def running_sum(self, name: str) -> np.ndarray:
        """``[0, cumsum(name[order])]`` in the order of ``index("product")`` (P + 1,): the sum over rows
        ``order[a:b]`` is ``s[b] - s[a]``; computed once per table."""
        key = f"product:{name}"
        if key not in self._sums:
            self._sums[key] = np.concatenate([[0.0], np.cumsum(getattr(self, name)[self.index("product").order])])
        return self._sums[key]

    def hourly_running_sum(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """The distinct hours (H,) and ``[0, cumsum(total of name per hour)]`` (H + 1,) over all products;
        computed once per table."""
        if "hours" not in self._sums:
            self._sums["hours"], self._sums["hour_of_row"] = np.unique(self.time, return_inverse=True)
        key = f"hour:{name}"
        if key not in self._sums:
            hours, inverse = self._sums["hours"], self._sums["hour_of_row"]
            per_hour = np.bincount(inverse, weights=getattr(self, name), minlength=len(hours))
            self._sums[key] = np.concatenate([[0.0], np.cumsum(per_hour)])
        return self._sums["hours"], self._sums[key]


class HistoryStore:
    """Read access to a store folder (see the module docstring); loads are cached per process."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    # -- building -------------------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        events: pd.DataFrame,
        root: str | Path,
        events_per_bucket: int,
        items: pd.DataFrame | None = None,
        rank: np.ndarray | None = None,
    ) -> tuple[HistoryStore, dict[str, int]]:
        """Write a store from canonical events; returns it and the count of events it does not use.

        ``rank`` (N,) is :func:`~t4r_dmt.data.canonical.canonical_rank` of ``events`` (computed when not
        given): events of one user at the same time are stored in that order, so the store does not
        depend on the order of the input rows.
        """
        root = Path(root)
        rank = canonical_rank(events) if rank is None else rank
        (root / "events").mkdir(parents=True, exist_ok=True)
        code = {event: i for i, event in enumerate(BEHAVIOR_EVENTS.values())}
        behavior = events["event_type"].map(code).to_numpy()
        used = np.flatnonzero(~np.isnan(behavior))
        n_buckets = max(1, math.ceil(len(used) / events_per_bucket))
        # Only index arrays are built over the whole log; each bucket's rows are gathered from the
        # input columns when its file is written (the log is never copied as a whole).
        columns = {
            "user_id": events["user_id"].to_numpy(np.int64),
            "ts": to_numpy(events["event_time"]),
            "behavior": behavior,
            "product_id": events["product_id"].to_numpy(np.int64),
            "category_id": events["category_id"].to_numpy(np.int64),
            "brand": _brands(events),
            "price": events["price"].to_numpy(np.float64),
        }
        bucket = user_bucket(columns["user_id"][used], n_buckets)
        # rank orders by time first, then breaks ties (event type, item ...): (bucket, user, time, tie-break).
        used = used[np.lexsort((rank[used], columns["user_id"][used], bucket))]
        bounds = np.concatenate([[0], np.cumsum(np.bincount(bucket, minlength=n_buckets))])
        del bucket
        for b in range(n_buckets):
            rows = used[bounds[b] : bounds[b + 1]]
            part = pd.DataFrame({name: values[rows] for name, values in columns.items()})
            part["behavior"] = part["behavior"].astype(np.int8)
            _write(part, root / "events" / f"bucket-{b:05d}.parquet")
        _write(_attribute_changes(events, rank), root / "item_asof.parquet")
        _write(_event_hours(columns["product_id"], columns["ts"], behavior), root / "item_event_hours.parquet")
        if items is not None:
            static = items[["product_id", "category_id", "brand", "price"]].drop_duplicates(
                "product_id", keep="last"
            )
            _write(static, root / "items.parquet")
        (root / "meta.json").write_text(
            json.dumps({"n_buckets": n_buckets, "behaviors": BEHAVIOR_EVENTS}, indent=2) + "\n"
        )
        unused = events["event_type"][np.isnan(behavior)].value_counts()
        return cls(root), {f"events not used ({kind})": int(n) for kind, n in unused.items()}

    def write_item_impressions(self, counts: pd.DataFrame) -> None:
        """Store impressions / clicks (and ``expected_clicks`` when the rows had positions) per
        (product_id, hour) of all ranking rows (``item_hour_counts``)."""
        columns = ["product_id", "hour", "impressions", "clicks"]
        if "expected_clicks" in counts.columns and counts["expected_clicks"].notna().all():
            columns.append("expected_clicks")
        counts = counts[columns].groupby(["product_id", "hour"], sort=True).sum().reset_index()
        counts[columns[:4]] = counts[columns[:4]].astype(np.int64)
        _write(counts, self.root / "item_impression_hours.parquet")

    # -- reading --------------------------------------------------------------------------------
    @property
    def n_buckets(self) -> int:
        return int(json.loads((self.root / "meta.json").read_text())["n_buckets"])

    def bucket(self, b: int) -> dict[str, BehaviorEvents]:
        """The events of bucket ``b``, one sorted block per behaviour."""
        return _load_bucket(*_key(self.root / "events" / f"bucket-{b:05d}.parquet"))

    def item_table(self) -> ItemTable:
        return _load_item_table(*_key(self.root / "item_asof.parquet"))

    def static_items(self) -> pd.DataFrame | None:
        path = self.root / "items.parquet"
        return _read(*_key(path)) if path.exists() else None

    def item_hours(self) -> ItemHourCounts:
        """Impression and event counts per (product, hour), merged (0 where a side has none)."""
        return _load_item_hours(
            *_key(self.root / "item_event_hours.parquet"), *_key(self.root / "item_impression_hours.parquet")
        )


def _attribute_changes(events: pd.DataFrame, rank: np.ndarray) -> pd.DataFrame:
    """Item attributes over time, keeping a row only where one of them changes (per product); events at the
    same time are taken in canonical order (``rank``, (N,))."""
    product = events["product_id"].to_numpy(np.int64)
    ts = to_numpy(events["event_time"])
    order = np.lexsort((rank, product))
    keep = np.ones(len(order), dtype=bool)
    same = product[order][1:] == product[order][:-1]
    category = events["category_id"].to_numpy(np.int64)[order]
    same &= category[1:] == category[:-1]
    del category
    brand = _brands(events)
    for values in (brand[order], events["price"].to_numpy(np.float64)[order]):
        missing = pd.isna(values)
        same &= (values[1:] == values[:-1]) | (missing[1:] & missing[:-1])
    keep[1:] = ~same
    rows = order[keep]
    return pd.DataFrame(
        {
            "product_id": product[rows],
            "ts": ts[rows],
            "category_id": events["category_id"].to_numpy(np.int64)[rows],
            "brand": brand[rows],
            "price": events["price"].to_numpy(np.float64)[rows],
        }
    )


def hour_of(ns: np.ndarray) -> np.ndarray:
    """Hour number ``floor(ns / HOUR_NS)`` of int64 nanosecond times; (N,) -> (N,) int64."""
    return np.floor_divide(np.asarray(ns, dtype=np.int64), HOUR_NS)


def brand_codes(brands: np.ndarray) -> np.ndarray:
    """Brands (object array of str or None) as int64 hash codes, stable across processes; None -> ``NO_BRAND``.

    Equal strings get equal codes, so "same brand" becomes an integer comparison (a collision of two brands'
    64-bit hashes is ignored)."""
    # Each distinct brand is hashed once (the text of its str(), as pd.util.hash_array does for any object).
    position, distinct = pd.factorize(np.asarray(brands, dtype=object))  # missing -> -1
    if not len(distinct):
        return np.full(len(position), NO_BRAND, dtype=np.int64)
    text = np.asarray(distinct, dtype=object).astype(str).astype(object)
    hashed = pd.util.hash_array(text, categorize=False).view(np.int64)
    return np.where(position >= 0, hashed[np.maximum(position, 0)], NO_BRAND)


def _event_hours(product: np.ndarray, ts: np.ndarray, behavior: np.ndarray) -> pd.DataFrame:
    """Views and purchases per (product_id, hour) of the event log (behaviour codes 0 and 2); sorted."""
    click, order = BEHAVIORS.index("click"), BEHAVIORS.index("order")
    used = (behavior == click) | (behavior == order)
    frame = pd.DataFrame({"product_id": product[used], "hour": hour_of(ts[used]),
                          "views": (behavior[used] == click).astype(np.int64),
                          "orders": (behavior[used] == order).astype(np.int64)})
    return frame.groupby(["product_id", "hour"], sort=True).sum().reset_index().astype(np.int64)


def _brands(events: pd.DataFrame) -> np.ndarray:
    """Brands as an object array, every kind of missing value (NaN, pd.NA) as None."""
    brand = events["brand"].to_numpy(object, copy=True)
    brand[pd.isna(brand)] = None
    return brand


def _write(frame: pd.DataFrame, path: Path) -> None:
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)


def _key(path: Path) -> tuple[str, int]:
    # The modification time is part of the cache key: a rewritten file is never served stale.
    if not path.exists():
        raise FileNotFoundError(f"event-history file {path} is missing (was the store moved or deleted?)")
    return str(path), path.stat().st_mtime_ns


@functools.lru_cache(maxsize=8)
def _read(path: str, mtime: int) -> pd.DataFrame:
    return pq.read_table(path).to_pandas()


@functools.lru_cache(maxsize=4)
def _load_bucket(path: str, mtime: int) -> dict[str, BehaviorEvents]:
    frame = pq.read_table(path).to_pandas()
    behavior = frame["behavior"].to_numpy()
    out = {}
    for code, name in enumerate(BEHAVIORS):
        rows = np.flatnonzero(behavior == code)
        out[name] = BehaviorEvents(
            user=frame["user_id"].to_numpy()[rows],
            time=frame["ts"].to_numpy()[rows],
            product=frame["product_id"].to_numpy()[rows],
            category=frame["category_id"].to_numpy()[rows],
            brand=frame["brand"].to_numpy(object)[rows],
            price=frame["price"].to_numpy()[rows],
        )
    return out


@functools.lru_cache(maxsize=2)
def _load_item_table(path: str, mtime: int) -> ItemTable:
    frame = pq.read_table(path).to_pandas()
    return ItemTable(
        product=frame["product_id"].to_numpy(),
        time=frame["ts"].to_numpy(),
        category=frame["category_id"].to_numpy(),
        brand=frame["brand"].to_numpy(object),
        price=frame["price"].to_numpy(),
    )


@functools.lru_cache(maxsize=2)
def _load_item_hours(events_path: str, events_mtime: int, impressions_path: str, impressions_mtime: int) -> ItemHourCounts:
    keys = ["product_id", "hour"]
    frame = pd.merge(
        pq.read_table(events_path).to_pandas(), pq.read_table(impressions_path).to_pandas(), on=keys, how="outer"
    ).fillna(0).sort_values(keys)
    return ItemHourCounts(
        product=frame["product_id"].to_numpy(np.int64),
        time=frame["hour"].to_numpy(np.int64),
        impressions=frame["impressions"].to_numpy(np.float64),
        clicks=frame["clicks"].to_numpy(np.float64),
        views=frame["views"].to_numpy(np.float64),
        orders=frame["orders"].to_numpy(np.float64),
        expected_clicks=frame["expected_clicks"].to_numpy(np.float64) if "expected_clicks" in frame.columns else None,
    )
