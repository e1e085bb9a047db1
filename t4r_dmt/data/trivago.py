"""Trivago RecSys Challenge 2019 session logs -> canonical events and impressions.

Columns used: user_id, session_id (text), timestamp (unix seconds), step, action_type, reference,
impressions and prices ("|"-joined lists, on "clickout item" rows).

* Events: every item interaction with a numeric reference (:data:`ITEM_ACTIONS`, the clickout
  included) becomes a ``view`` of that item. Other actions (filters, destination searches, ...) are
  not item events and are not read as events. An item interaction whose reference is missing or
  "unknown" names no item: it is left out and counted as "item interaction without reference".
* Impressions: each "clickout item" row is one request (``request_id`` = a stable hash of session_id
  and step) listing its impressed items in order: position = index in the list, page =
  position // page_size (default ``PAGE_SIZE`` = 25: a clickout's list is one results page of up to 25
  items, so every position is on page 0 and the bias tower sees no invented page break), click =
  (item == reference), order = 0, plus an extra ``price`` column from ``prices``. A clickout whose
  reference is missing (the masked final clickouts of the test split) has no label: it is left out and
  counted as "clickout without reference". Both counts are in ``dropped`` in either mode: they are not
  errors.
* user_id: a stable 63-bit hash of the text id; user_session: session_id.
"""

from __future__ import annotations

import functools
import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from t4r_dmt.data.canonical import (
    EVENT_DTYPES,
    IMPRESSION_DTYPES,
    check_impressions,
    event_columns,
    finish,
)
from t4r_dmt.data.columns import (
    NULL_ID,
    epoch_column,
    int_column,
    map_column,
    price_column,
    stable_hash,
    str_column,
)
from t4r_dmt.data.reader import Layout, Logs, counts, every_file, read
from t4r_dmt.data.sources import PARQUET_SUFFIXES, Selection
from t4r_dmt.data.validate import DEFAULT_MAX_TIME_GAP, BadRows, Batch, Columns

SELECTION = Selection(suffixes=(".csv", ".csv.gz") + PARQUET_SUFFIXES,
                      exclude=("item_metadata*", "submission*", "ground_truth*"))
CLICKOUT = "clickout item"
ITEM_ACTIONS = (CLICKOUT, "interaction item image", "interaction item info", "interaction item rating",
                "interaction item deals", "search for item")
ACTIONS = ITEM_ACTIONS + ("change of sort order", "filter selection", "search for destination", "search for poi")
UNKNOWN = "unknown"
"""The reference the data set gives an item interaction whose item is unknown."""
COLUMNS = ("user_id", "session_id", "timestamp", "step", "action_type", "reference", "impressions", "prices")


def _mask(arr: pa.Array) -> np.ndarray:
    return np.asarray(arr.fill_null(False).to_numpy(zero_copy_only=False), bool)


def _convert(batch: Batch, page_size: int) -> dict[str, Columns]:
    user = stable_hash(str_column(batch, "user_id", null=NULL_ID))
    session = str_column(batch, "session_id", null=NULL_ID)
    event_time = epoch_column(batch, "timestamp", "s")
    step = int_column(batch, "step", null="missing step")
    action = map_column(batch, "action_type", {a: a for a in ACTIONS})
    raw_reference = pc.cast(batch.column("reference"), pa.string())
    no_reference = _mask(pc.or_kleene(raw_reference.is_null(), pc.equal(raw_reference, UNKNOWN)))
    clickout = action == CLICKOUT
    batch.skip(clickout & no_reference, "clickout without reference")
    batch.skip(np.isin(action, ITEM_ACTIONS) & no_reference, "item interaction without reference")
    item_action = np.isin(action, ITEM_ACTIONS) & ~no_reference
    reference = int_column(batch, "reference", null=None,
                           raw=pc.if_else(pa.array(item_action), raw_reference, pa.scalar(None, pa.string())))
    rows = np.flatnonzero(item_action)
    events = event_columns(rows, event_time[rows], "view", reference[rows], user[rows], session[rows])
    requests = np.flatnonzero(clickout & ~no_reference)
    impressions = _impressions(batch, requests, reference, page_size)
    row = impressions["_row"]
    impressions["request_id"] = _request_ids(session, step)[row]
    impressions["user_id"] = user[row]
    impressions["event_time"] = event_time[row]
    return {"events": events, "impressions": impressions}


def _impressions(batch: Batch, requests: np.ndarray, reference: np.ndarray, page_size: int) -> Columns:
    """One row per impressed item of the clickout rows ``requests`` (R,): (I,) columns."""
    take = pa.array(requests)
    raw_items = pc.cast(batch.column("impressions"), pa.string()).take(take)
    raw_prices = pc.cast(batch.column("prices"), pa.string()).take(take)
    batch.flag(_mask(raw_items.is_null()), "clickout without impressions", "impressions", raw_items,
               rows=requests)
    items, prices = pc.split_pattern(raw_items, "|"), pc.split_pattern(raw_prices, "|")
    n_items = np.asarray(pc.list_value_length(items).fill_null(0).to_numpy(zero_copy_only=False), np.int64)
    n_prices = np.asarray(pc.list_value_length(prices).fill_null(0).to_numpy(zero_copy_only=False), np.int64)
    batch.flag(n_items != n_prices, "prices do not match impressions", "prices", raw_prices,
               hint="as many prices as impressed items expected", rows=requests)
    owner = np.repeat(np.arange(len(requests)), n_items)
    rows = requests[owner]
    position = np.arange(len(owner)) - np.repeat(np.cumsum(n_items) - n_items, n_items)
    product = int_column(batch, "impressions", raw=pc.list_flatten(items), rows=rows)
    flat_prices = pc.list_flatten(prices)
    has_price = position < n_prices[owner]
    price_index = np.repeat(np.cumsum(n_prices) - n_prices, n_items) + position
    price_raw = flat_prices.take(pa.array(np.where(has_price, price_index, 0))) if len(flat_prices) else \
        pa.nulls(len(owner), pa.string())
    price = price_column(batch, "prices", raw=price_raw, rows=rows)
    return {
        "position": position, "page": position // page_size,
        "product_id": product, "click": (product == reference[rows]).astype(np.int8),
        "order": np.zeros(len(rows), np.int8), "price": np.where(has_price, price, np.nan), "_row": rows,
    }


def _request_ids(session: np.ndarray, step: np.ndarray) -> np.ndarray:
    """(n,) int64 request ids: a stable hash of (session_id, step)."""
    hashed = pd.util.hash_pandas_object(pd.DataFrame({"session": session, "step": step}), index=False)
    return (hashed.to_numpy() & np.uint64(0x7FFF_FFFF_FFFF_FFFF)).astype(np.int64)


PAGE_SIZE = 25  # a clickout's impressions: one results page of up to 25 items (RecSys Challenge 2019)


def load(path: str | os.PathLike[str], on_bad_rows: str = "raise", page_size: int = PAGE_SIZE,
         max_time_gap: str = DEFAULT_MAX_TIME_GAP) -> Logs:
    """Read Trivago session logs (a file, a glob or a folder's csv/parquet files, without
    item_metadata and submission files) into canonical events and impressions.

    Bad rows as in :func:`t4r_dmt.data.read_events` (rows are 0-based among the file's data rows);
    besides bad values, a clickout without impressions, with a different number of prices and
    impressions, or repeating a (session, step) already seen is a bad row.
    """
    if page_size < 1:
        raise ValueError(f"page_size must be >= 1; got {page_size}")
    report = BadRows(on_bad_rows, max_time_gap)
    layout = Layout(functools.partial(_convert, page_size=page_size), required=COLUMNS)
    frames = read(path, SELECTION, every_file(layout),
                  {"events": EVENT_DTYPES, "impressions": {**IMPRESSION_DTYPES, "price": "float64"}}, report)
    impressions = check_impressions(frames["impressions"], report)
    report.log(os.fspath(path))
    return Logs(finish(frames["events"], EVENT_DTYPES), finish(impressions, IMPRESSION_DTYPES, ("price",)),
                counts(report))
