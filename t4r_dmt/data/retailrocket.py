"""Retailrocket ``events.csv`` -> canonical events.

Header ``timestamp,visitorid,event,itemid,transactionid``; timestamp in unix milliseconds. Events:
view -> view, addtocart -> cart, transaction -> purchase. No categories or prices in this file (they
live in item_properties). No sessions: each visitor's events are split at 30-minute gaps.
"""

from __future__ import annotations

import os

from t4r_dmt.data.canonical import EVENT_DTYPES, event_columns, finish, sessionize
from t4r_dmt.data.columns import epoch_column, int_column, map_column
from t4r_dmt.data.reader import Layout, Logs, counts, every_file, read
from t4r_dmt.data.sources import PARQUET_SUFFIXES, Selection
from t4r_dmt.data.validate import DEFAULT_MAX_TIME_GAP, BadRows, Batch, Columns

SELECTION = Selection(suffixes=(".csv", ".csv.gz") + PARQUET_SUFFIXES, include=("events*",))
EVENTS: dict[str, str | None] = {"view": "view", "addtocart": "cart", "transaction": "purchase"}


def _convert(batch: Batch) -> dict[str, Columns]:
    event_time = epoch_column(batch, "timestamp", "ms")
    user = int_column(batch, "visitorid")
    event_type = map_column(batch, "event", EVENTS)
    item = int_column(batch, "itemid")
    return {"events": event_columns(batch.rows, event_time, event_type, item, user)}


LAYOUT = Layout(_convert, required=("timestamp", "visitorid", "event", "itemid"))



def load(path: str | os.PathLike[str], on_bad_rows: str = "raise", page_size: int = 10,
         max_time_gap: str = DEFAULT_MAX_TIME_GAP) -> Logs:
    """Read Retailrocket events (a file, a glob, or a folder's ``events*`` files) into canonical
    events; no impressions. Bad rows as in :func:`t4r_dmt.data.read_events`."""
    report = BadRows(on_bad_rows, max_time_gap)
    events = read(path, SELECTION, every_file(LAYOUT), {"events": EVENT_DTYPES}, report)["events"]
    events["user_session"] = sessionize(events["user_id"], events["event_time"])
    report.log(os.fspath(path))
    return Logs(finish(events, EVENT_DTYPES), None, counts(report))
