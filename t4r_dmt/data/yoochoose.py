"""YOOCHOOSE (RecSys Challenge 2015) -> canonical events.

Three file layouts, told apart per file:

* ``yoochoose-clicks.dat`` (no header, comma-separated): session_id, ISO timestamp, item_id, category
  -> ``view`` events. The category field is "0" (unknown), "S" (special offer), 1..12 (a category) or a
  longer number (a brand): category_id is the number for 1..12, :data:`SPECIAL_OFFER` for "S" (with
  category_code "special_offer"), else -1; brand is the number's text for longer numbers.
* ``yoochoose-buys.dat`` (no header; a file whose name contains "buys"): session_id, timestamp, item_id,
  price, quantity -> ``purchase`` events with that price (one event per line, whatever the quantity).
* session-rec's "prepared" TSV, recognised by its header ``SessionId<TAB>ItemId<TAB>Time`` (unix seconds,
  float) -> ``view`` events; parquet files must have these columns too.

YOOCHOOSE has no user ids: user_id is the session id and user_session its text.
"""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from t4r_dmt.data.canonical import EVENT_DTYPES, NO_CATEGORY, event_columns, finish
from t4r_dmt.data.columns import (
    NOT_INTEGER,
    epoch_column,
    id_labels,
    int_column,
    price_column,
    time_column,
)
from t4r_dmt.data.reader import Layout, Logs, counts, read
from t4r_dmt.data.sources import PARQUET_SUFFIXES, TEXT_SUFFIXES, Selection, TextLayout, file_kind, first_line
from t4r_dmt.data.validate import DEFAULT_MAX_TIME_GAP, BadRows, Batch, Columns

SPECIAL_OFFER = -2
"""category_id of YOOCHOOSE's "S" (special offer) pseudo-category."""
SELECTION = Selection(suffixes=TEXT_SUFFIXES + PARQUET_SUFFIXES, include=("*clicks*", "*buys*"))
# ISO 8601 with milliseconds and a zone ("2014-04-07T10:51:09.277Z"): pandas parses it, not strptime.
ISO_FORMATS: tuple[str, ...] = ()


def _convert_clicks(batch: Batch) -> dict[str, Columns]:
    session = int_column(batch, "session_id")
    event_time = time_column(batch, "timestamp", ISO_FORMATS)
    item = int_column(batch, "item_id")
    raw = batch.column("category")
    special = np.asarray(pc.equal(raw, "S").fill_null(False).to_numpy(zero_copy_only=False), bool)
    numeric = np.asarray(pc.match_substring_regex(raw, r"^[0-9]+$").fill_null(False)
                         .to_numpy(zero_copy_only=False), bool)
    batch.flag(~special & ~numeric, NOT_INTEGER, "category", raw, hint='expected "S" or a number')
    number = int_column(batch, "category", null=None,
                        raw=pc.if_else(pa.array(numeric), raw, pa.scalar(None, pa.string())))
    is_category = (number >= 1) & (number <= 12)
    category_id = np.where(is_category, number, np.where(special, SPECIAL_OFFER, NO_CATEGORY))
    brand = np.asarray(raw.to_pandas(), dtype=object)
    brand[number <= 12] = None
    category_code = np.full(batch.n, None, dtype=object)
    category_code[special] = "special_offer"
    return {"events": event_columns(batch.rows, event_time, "view", item, session, id_labels(session),
                                   category_id=category_id, category_code=category_code, brand=brand)}


def _convert_buys(batch: Batch) -> dict[str, Columns]:
    session = int_column(batch, "session_id")
    event_time = time_column(batch, "timestamp", ISO_FORMATS)
    item = int_column(batch, "item_id")
    price = price_column(batch, "price")
    return {"events": event_columns(batch.rows, event_time, "purchase", item, session, id_labels(session),
                                   price=price)}


def _convert_prepared(batch: Batch) -> dict[str, Columns]:
    session = int_column(batch, "SessionId")
    item = int_column(batch, "ItemId")
    event_time = epoch_column(batch, "Time", "s")
    return {"events": event_columns(batch.rows, event_time, "view", item, session, id_labels(session))}


CLICKS = Layout(_convert_clicks, required=("session_id", "timestamp", "item_id", "category"),
                text=TextLayout(names=("session_id", "timestamp", "item_id", "category")))
BUYS = Layout(_convert_buys, required=("session_id", "timestamp", "item_id", "price"),
              text=TextLayout(names=("session_id", "timestamp", "item_id", "price", "quantity")))


def layout_for(file: str) -> Layout:
    """The layout of one YOOCHOOSE file: prepared TSV (by its header), buys (by name) or clicks."""
    prepared = ("SessionId", "ItemId", "Time")
    if file_kind(file) == "parquet":
        return Layout(_convert_prepared, required=prepared)
    header = first_line(file)
    if header.startswith("SessionId"):
        return Layout(_convert_prepared, required=prepared,
                      text=TextLayout(delimiter="\t" if "\t" in header else ","))
    return BUYS if "buys" in os.path.basename(file).lower() else CLICKS


def load(path: str | os.PathLike[str], on_bad_rows: str = "raise", page_size: int = 10,
         max_time_gap: str = DEFAULT_MAX_TIME_GAP) -> Logs:
    """Read YOOCHOOSE clicks / buys / prepared files (a file, a glob, or a folder's ``*clicks*`` and
    ``*buys*`` files) into canonical events; no impressions. Bad rows as in
    :func:`t4r_dmt.data.read_events` (rows are 0-based among the file's data rows)."""
    report = BadRows(on_bad_rows, max_time_gap)
    events = read(path, SELECTION, layout_for, {"events": EVENT_DTYPES}, report)["events"]
    report.log(os.fspath(path))
    return Logs(finish(events, EVENT_DTYPES), None, counts(report))
