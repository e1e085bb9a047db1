"""Readers: public log formats -> the canonical events / impressions tables (with validation).

Every reader takes a file, a glob or a folder of CSV, CSV.gz or parquet files (jsonl for OTTO), and
either raises :class:`~t4r_dmt.errors.InputError` on the first bad row (naming file, column, line of a
text file or 0-based row of a parquet file, and value) or, with ``on_bad_rows="drop"``, leaves bad rows
out and counts them by reason. A file that cannot be read at all is an InputError naming it. Ids may be
integers or text (:mod:`t4r_dmt.data.ids`).
The table layouts are documented in :mod:`t4r_dmt.data.canonical`.
"""

from __future__ import annotations

from t4r_dmt.data.canonical import EVENT_DTYPES, IMPRESSION_DTYPES, canonical_order
from t4r_dmt.data.ids import IdTexts
from t4r_dmt.data.logs import FORMATS, load_logs
from t4r_dmt.data.reader import Logs
from t4r_dmt.data.rees46 import read_events, read_impressions, read_items
from t4r_dmt.data.validate import DEFAULT_MAX_TIME_GAP, ON_BAD_ROWS

__all__ = [
    "DEFAULT_MAX_TIME_GAP",
    "EVENT_DTYPES",
    "FORMATS",
    "IMPRESSION_DTYPES",
    "IdTexts",
    "ON_BAD_ROWS",
    "Logs",
    "canonical_order",
    "load_logs",
    "read_events",
    "read_impressions",
    "read_items",
]
