"""Taobao ``UserBehavior.csv`` (Alibaba, Tianchi) -> canonical events.

No header; columns user_id, item_id, category_id, behavior_type, timestamp (unix seconds).
Behaviours: pv -> view, cart -> cart, buy -> purchase. "fav" (add to favourites) has no canonical
counterpart: those rows are left out by design and counted in ``dropped`` as
"unmapped behaviour: fav", in either ``on_bad_rows`` mode. Any other behaviour is a bad row. The
format has no sessions: each user's events are split at 30-minute gaps.
"""

from __future__ import annotations

import os

import pandas as pd

from t4r_dmt.data.canonical import EVENT_DTYPES, event_columns, finish, sessionize
from t4r_dmt.data.columns import epoch_column, int_column, map_column
from t4r_dmt.data.reader import Layout, Logs, counts, read
from t4r_dmt.data.sources import PARQUET_SUFFIXES, Selection, TextLayout
from t4r_dmt.data.validate import DEFAULT_MAX_TIME_GAP, BadRows, Batch, Columns

SELECTION = Selection(suffixes=(".csv", ".csv.gz") + PARQUET_SUFFIXES)
BEHAVIOURS: dict[str, str | None] = {"pv": "view", "cart": "cart", "buy": "purchase", "fav": None}
COLUMNS = ("user_id", "item_id", "category_id", "behavior_type", "timestamp")


def _convert(batch: Batch) -> dict[str, Columns]:
    user = int_column(batch, "user_id")
    item = int_column(batch, "item_id")
    category = int_column(batch, "category_id")
    event_type = map_column(batch, "behavior_type", BEHAVIOURS)
    event_time = epoch_column(batch, "timestamp", "s")
    batch.skip(pd.isna(event_type) & ~batch.bad, "unmapped behaviour: fav")
    return {"events": event_columns(batch.rows, event_time, event_type, item, user, category_id=category)}


def layout_for(file: str) -> Layout:
    """Text files have no header; parquet files carry the column names."""
    return Layout(_convert, required=COLUMNS, text=TextLayout(names=COLUMNS))


def load(path: str | os.PathLike[str], on_bad_rows: str = "raise", page_size: int = 10,
         max_time_gap: str = DEFAULT_MAX_TIME_GAP) -> Logs:
    """Read Taobao user behaviour (a file, a glob or a folder) into canonical events; no impressions.
    Bad rows as in :func:`t4r_dmt.data.read_events`."""
    report = BadRows(on_bad_rows, max_time_gap)
    events = read(path, SELECTION, layout_for, {"events": EVENT_DTYPES}, report)["events"]
    events["user_session"] = sessionize(events["user_id"], events["event_time"])
    report.log(os.fspath(path))
    return Logs(finish(events, EVENT_DTYPES), None, counts(report))
