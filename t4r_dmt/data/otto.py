"""OTTO (Kaggle "OTTO – Multi-Objective Recommender System") session jsonl -> canonical events.

One JSON object per line: ``{"session": int, "events": [{"aid": int, "ts": int, "type": str}, ...]}``.
Types: clicks -> view, carts -> cart, orders -> purchase. ``ts`` is in milliseconds in the train file
and in seconds in the test file: each value below :data:`SECONDS_BELOW` (1e11, i.e. 1973 in ms or the
year 5138 in s) is taken as seconds. user_id is the session id (OTTO has no user ids).

A row is a line (a session): a session with any bad event is a bad row as a whole. Bad JSON raises
in either mode, except a truncated last line (counted as "truncated line" under ``drop``).
"""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from t4r_dmt.data.canonical import EVENT_DTYPES, event_columns, finish
from t4r_dmt.data.columns import MISSING_TIME, epoch_to_time, id_labels, int_column, map_column
from t4r_dmt.data.reader import Layout, Logs, counts, every_file, read
from t4r_dmt.data.sources import JSON_SUFFIXES, Selection
from t4r_dmt.data.validate import DEFAULT_MAX_TIME_GAP, BadRows, Batch, Columns
from t4r_dmt.errors import InputError

SELECTION = Selection(suffixes=JSON_SUFFIXES)
TYPES: dict[str, str | None] = {"clicks": "view", "carts": "cart", "orders": "purchase"}
SECONDS_BELOW = 1e11


def _convert(batch: Batch) -> dict[str, Columns]:
    session = int_column(batch, "session")
    events = batch.column("events")
    if not pa.types.is_list(events.type) or not pa.types.is_struct(events.type.value_type):
        raise InputError(batch.file, f"expected a list of event objects, found {events.type}", column="events")
    flat = pc.list_flatten(events)
    parent = np.asarray(pc.list_parent_indices(events).to_numpy(zero_copy_only=False), np.int64)
    fields = {events.type.value_type.field(i).name for i in range(events.type.value_type.num_fields)}
    for name in ("aid", "ts", "type"):
        if name not in fields:
            raise InputError(batch.file, "missing event field", column=f"events.{name}")
    raw_ts = pc.struct_field(flat, "ts")
    aid = int_column(batch, "events.aid", raw=pc.struct_field(flat, "aid"), rows=parent)
    ts = int_column(batch, "events.ts", raw=raw_ts, rows=parent, null=MISSING_TIME).astype(np.float64)
    millis = np.where(ts < SECONDS_BELOW, ts * 1e3, ts)
    event_time = epoch_to_time(batch, "events.ts", millis, "ms", raw_ts, rows=parent)
    event_type = map_column(batch, "events.type", TYPES, raw=pc.struct_field(flat, "type"), rows=parent)
    return {"events": event_columns(parent, event_time, event_type, aid, session[parent],
                                   id_labels(session)[parent])}


LAYOUT = Layout(_convert, required=("session", "events"))



def load(path: str | os.PathLike[str], on_bad_rows: str = "raise", page_size: int = 10,
         max_time_gap: str = DEFAULT_MAX_TIME_GAP) -> Logs:
    """Read OTTO sessions (a .jsonl[.gz] file, a glob, or a folder's jsonl files) into canonical
    events; no impressions. Rows are 0-based among the file's non-empty lines."""
    report = BadRows(on_bad_rows, max_time_gap)
    events = read(path, SELECTION, every_file(LAYOUT), {"events": EVENT_DTYPES}, report)["events"]
    report.log(os.fspath(path))
    return Logs(finish(events, EVENT_DTYPES), None, counts(report))
