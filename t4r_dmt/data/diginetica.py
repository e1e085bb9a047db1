"""Diginetica (CIKM Cup 2016) ``train-item-views.csv`` -> canonical ``view`` events.

``;``-separated with a header ``session_id;user_id;item_id;timeframe;eventdate`` (the original camelCase
``sessionId;userId;itemId`` is accepted too). event_time = eventdate (a day) + timeframe milliseconds.
Anonymous sessions have user_id "NA": they get ``user_id = -1 - session_id``, a negative id that is
unique per session and can never collide with a real (non-negative) user id.
"""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from t4r_dmt.data.canonical import EVENT_DTYPES, event_columns, finish
from t4r_dmt.data.columns import BAD_TIME, NULL_ID, id_labels, int_column, time_column
from t4r_dmt.data.reader import Layout, Logs, counts, every_file, read
from t4r_dmt.data.sources import PARQUET_SUFFIXES, Selection, TextLayout
from t4r_dmt.data.validate import DEFAULT_MAX_TIME_GAP, BadRows, Batch, Columns

SELECTION = Selection(suffixes=(".csv", ".csv.gz") + PARQUET_SUFFIXES, include=("*item-views*", "*item_views*"))
ANONYMOUS = "NA"


def _convert(batch: Batch) -> dict[str, Columns]:
    session = int_column(batch, "session_id")
    raw_user = batch.column("user_id")
    if pa.types.is_string(raw_user.type):
        anonymous = np.asarray(pc.equal(raw_user, ANONYMOUS).fill_null(False).to_numpy(zero_copy_only=False), bool)
        known = pc.if_else(pa.array(anonymous), pa.scalar(None, pa.string()), raw_user)
    else:
        anonymous, known = np.zeros(batch.n, bool), raw_user
    user = int_column(batch, "user_id", raw=known, null=None)
    missing = np.asarray(raw_user.is_null().to_numpy(zero_copy_only=False), bool)
    batch.flag(missing, NULL_ID, "user_id", raw_user, hint=f'anonymous users are "{ANONYMOUS}"')
    batch.flag(~anonymous & (user < 0), "negative user id", "user_id", raw_user,
               hint="negative ids are kept for anonymous sessions")
    user = np.where(anonymous, -1 - session, user)
    item = int_column(batch, "item_id")
    offset_ms = int_column(batch, "timeframe", null="missing time")
    day = time_column(batch, "eventdate", ("%Y-%m-%d",))
    batch.flag(offset_ms < 0, BAD_TIME, "timeframe", batch.column("timeframe"), hint="negative offset")
    event_time = day + offset_ms.astype("timedelta64[ms]")
    return {"events": event_columns(batch.rows, event_time, "view", item, user, id_labels(session))}


LAYOUT = Layout(_convert, required=("session_id", "user_id", "item_id", "timeframe", "eventdate"),
                text=TextLayout(delimiter=";", aliases={"sessionId": "session_id", "userId": "user_id",
                                                        "itemId": "item_id"}))



def load(path: str | os.PathLike[str], on_bad_rows: str = "raise", page_size: int = 10,
         max_time_gap: str = DEFAULT_MAX_TIME_GAP) -> Logs:
    """Read Diginetica item views (a file, a glob, or a folder's ``*item-views*`` files) into canonical
    events; no impressions. Bad rows as in :func:`t4r_dmt.data.read_events`."""
    report = BadRows(on_bad_rows, max_time_gap)
    events = read(path, SELECTION, every_file(LAYOUT), {"events": EVENT_DTYPES}, report)["events"]
    report.log(os.fspath(path))
    return Logs(finish(events, EVENT_DTYPES), None, counts(report))
