"""Readers: public log formats -> the canonical events / impressions tables (with validation).

Every reader takes a file, a glob or a folder of CSV, CSV.gz or parquet files (jsonl for OTTO), and
either raises :class:`~t4r_dmt.errors.InputError` on the first bad row (naming file, column, 0-based
data row and value) or, with ``on_bad_rows="drop"``, leaves bad rows out and counts them by reason.
The table layouts are documented in :mod:`t4r_dmt.data.canonical`.
"""

from __future__ import annotations

from t4r_dmt.data.canonical import EVENT_DTYPES, IMPRESSION_DTYPES
from t4r_dmt.data.logs import FORMATS, load_logs
from t4r_dmt.data.reader import Logs
from t4r_dmt.data.rees46 import read_events, read_impressions, read_items
from t4r_dmt.data.validate import ON_BAD_ROWS

__all__ = [
    "EVENT_DTYPES",
    "FORMATS",
    "IMPRESSION_DTYPES",
    "ON_BAD_ROWS",
    "Logs",
    "load_logs",
    "read_events",
    "read_impressions",
    "read_items",
]
