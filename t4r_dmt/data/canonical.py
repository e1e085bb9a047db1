"""The canonical events and impressions tables every reader produces, and the checks on whole tables.

Events (one row per user action):

==============  ==============  ===========================================================
column          dtype           notes
==============  ==============  ===========================================================
event_time      datetime64[ns]  UTC, tz-naive
event_type      object          view | cart | purchase | remove_from_cart
product_id      int64
category_id     int64           -1 when the format has no category
category_code   object          str or None
brand           object          str or None
price           float64         >= 0; NaN when the format has no price
user_id         int64
user_session    object          str; formats without sessions split each user's events at
                                30-minute gaps (:func:`sessionize`)
==============  ==============  ===========================================================

Impressions (one row per item shown in a ranked list): request_id, user_id, event_time (request
time), product_id, position (0 = top), page, all int64 but event_time; click and order int8 0/1.
``request_id`` is the raw id: int64, or object (str) when the log's request ids are text.
Readers may add columns (Trivago adds ``price``).

``user_id`` and ``product_id`` are int64 whatever the log holds: text ids become surrogates
(:mod:`t4r_dmt.data.ids`).

While a read is in progress, tables are :data:`Columns` (name -> (N,) numpy array) that also carry
``_src`` (file index) and ``_row`` (table row in that file), so that whole-table checks can name the
file and row of a bad row; :func:`finish` builds the DataFrame once, at the end.

Row order: readers keep the files' order; :func:`canonical_order` gives the one order that every
consumer of events can rely on (time, user, event type, item, then every other column), so that what is
built from the events does not depend on how the input rows happened to be ordered.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from t4r_dmt.data.validate import BadRows, Columns
from t4r_dmt.schema import EVENT_TYPES

EVENT_DTYPES: dict[str, str] = {
    "event_time": "datetime64[ns]", "event_type": "object", "product_id": "int64", "category_id": "int64",
    "category_code": "object", "brand": "object", "price": "float64", "user_id": "int64",
    "user_session": "object",
}
IMPRESSION_DTYPES: dict[str, str] = {
    "request_id": "int64", "user_id": "int64", "event_time": "datetime64[ns]", "product_id": "int64",
    "position": "int64", "page": "int64", "click": "int8", "order": "int8",
}
HELPERS = ("_src", "_row")
SESSION_GAP = np.timedelta64(30, "m")
NO_CATEGORY = -1


def empty(dtypes: dict[str, str]) -> Columns:
    """A table with no rows and the given columns and dtypes (plus the helper columns)."""
    columns = {name: np.zeros(0, dtype=dtype) for name, dtype in dtypes.items()}
    columns.update({"_src": np.zeros(0, np.int32), "_row": np.zeros(0, np.int64)})
    return columns


def take(columns: Columns, index: np.ndarray) -> Columns:
    """The rows ``index`` (a bool mask or positions) of every column."""
    return {name: values[index] for name, values in columns.items()}


def event_columns(
    rows: np.ndarray,
    event_time: np.ndarray,
    event_type: np.ndarray | str,
    product_id: np.ndarray,
    user_id: np.ndarray,
    user_session: np.ndarray | None = None,
    category_id: np.ndarray | None = None,
    category_code: np.ndarray | None = None,
    brand: np.ndarray | None = None,
    price: np.ndarray | None = None,
) -> Columns:
    """Assemble canonical event columns from (n,) arrays; missing optional columns get their defaults.

    ``rows`` (n,) is the local row each event comes from (the ``_row`` helper column). A None
    ``user_session`` is left None, for :func:`sessionize` to fill once all files are read.
    """
    n = len(rows)

    def objects(values: np.ndarray | str | None) -> np.ndarray:
        if values is None or isinstance(values, str):
            return np.full(n, values, dtype=object)
        return np.asarray(values, dtype=object)

    return {
        "event_time": np.asarray(event_time, "datetime64[ns]"),
        "event_type": objects(event_type),
        "product_id": np.asarray(product_id, np.int64),
        "category_id": np.full(n, NO_CATEGORY, np.int64) if category_id is None
        else np.asarray(category_id, np.int64),
        "category_code": objects(category_code),
        "brand": objects(brand),
        "price": np.full(n, np.nan) if price is None else np.asarray(price, np.float64),
        "user_id": np.asarray(user_id, np.int64),
        "user_session": objects(user_session),
        "_row": np.asarray(rows, np.int64),
    }


def sessionize(user_id: np.ndarray, event_time: np.ndarray, gap: np.timedelta64 = SESSION_GAP) -> np.ndarray:
    """Split each user's events into sessions at inactivity gaps longer than ``gap``.

    Parameters
    ----------
    user_id: (n,) int64
    event_time: (n,) datetime64[ns]

    Returns
    -------
    (n,) object array of session names ``"<user_id>_<unix seconds of the session's first event>"``:
    the same events give the same names whatever the row order or the files they came from.
    """
    n = len(user_id)
    if n == 0:
        return np.zeros(0, dtype=object)
    order = np.lexsort((event_time, user_id))
    users, times = user_id[order], event_time[order]
    new = np.ones(n, bool)
    new[1:] = (users[1:] != users[:-1]) | ((times[1:] - times[:-1]) > gap)
    starts = np.flatnonzero(new)
    start_seconds = times[starts].astype("datetime64[s]").astype(np.int64)
    names = np.char.add(np.char.add(users[starts].astype(str), "_"), start_seconds.astype(str)).astype(object)
    out = np.empty(n, dtype=object)
    out[order] = names[np.cumsum(new) - 1]
    return out


def finish(columns: Columns, dtypes: dict[str, str], extra: tuple[str, ...] = ()) -> pd.DataFrame:
    """The DataFrame of the canonical columns (then ``extra``) with their dtypes; helpers left out."""
    frame = pd.DataFrame({name: columns[name] for name in (*dtypes, *extra)})
    return frame.astype(dtypes, copy=False)


def check_impressions(columns: Columns, report: BadRows) -> Columns:
    """Whole-log checks on impressions: unique (request_id, position); one user and time per request.

    Parameters
    ----------
    columns: (N,) arrays of impressions with the helper columns
    """
    if len(columns["request_id"]) == 0:
        return columns
    keys = pd.DataFrame({"request_id": columns["request_id"], "position": columns["position"]})
    duplicate = keys.duplicated(keep="first").to_numpy()
    columns = report.check_frame(columns, duplicate, "duplicate (request_id, position)", "position",
                                 ("request_id", "position"))
    for column in ("user_id", "event_time"):
        values = pd.Series(columns[column])
        first = values.groupby(columns["request_id"], sort=False).transform("first")
        differs = (values != first).to_numpy()
        columns = report.check_frame(columns, differs, f"{column} differs within a request", column,
                                     ("request_id", column))
    return columns


TIME_OUTLIER = "time far outside the log"


def time_outliers(times: np.ndarray, max_gap: np.timedelta64) -> tuple[np.ndarray, np.ndarray]:
    """Rows whose time lies apart from the bulk of the log.

    The sorted times split wherever two consecutive ones are more than ``max_gap`` apart; the part with
    the most rows (the earliest of equals) is the bulk, every other row is an outlier.

    Parameters
    ----------
    times: (N,) datetime64[ns]
    max_gap: the longest stretch without rows that a log may hold

    Returns
    -------
    (N,) bool, True for outliers; (2,) datetime64[ns], the first and last time of the bulk (NaT if N = 0).
    """
    n = len(times)
    if n == 0:
        return np.zeros(0, bool), np.array(["NaT", "NaT"], "datetime64[ns]")
    order = np.argsort(times, kind="stable")
    ordered = times[order]
    part = np.zeros(n, np.int64)
    np.cumsum(np.diff(ordered) > max_gap, out=part[1:])
    bulk = int(np.argmax(np.bincount(part)))
    inside = np.flatnonzero(part == bulk)
    outlier = np.empty(n, bool)
    outlier[order] = part != bulk
    return outlier, ordered[[inside[0], inside[-1]]]


def check_time_outliers(columns: Columns, report: BadRows) -> Columns:
    """Whole-log check on ``event_time``: rows apart from the bulk of the log by more than
    ``report.max_time_gap`` (a 1970 or 2100 timestamp in a 2020 log) are bad rows, raised on or dropped.

    Parameters
    ----------
    columns: (N,) arrays with ``event_time`` and the helper columns
    """
    if len(columns["event_time"]) < 2:
        return columns
    outlier, (first, last) = time_outliers(columns["event_time"], report.max_time_gap)
    if not outlier.any():
        return columns
    gap = str(pd.Timedelta(report.max_time_gap)).removesuffix(" 00:00:00")  # "30 days", "0 days 12:00:00"
    hint = (f"more than {gap} away from the rest of the log ({pd.Timestamp(first)} .. {pd.Timestamp(last)}); "
            f"leave such rows out with --on_bad_rows drop, or allow longer gaps with --max_time_gap")
    return report.check_frame(columns, outlier, TIME_OUTLIER, "event_time", hint=hint)


def canonical_order(events: pd.DataFrame) -> np.ndarray:
    """The rows of a canonical events frame in the one order that does not depend on the input's order.

    Sorted by event_time, user_id, event type (view, cart, purchase, remove_from_cart), product_id,
    category_id, price, then brand, category_code and user_session (text, compared only among rows
    equal on everything before). Columns a frame lacks are left out (the session ETL's frames need no
    user_id or price). Rows equal on every column are interchangeable.

    Returns
    -------
    (N,) int64: the row positions in that order (``events.iloc[order]`` is sorted).
    """
    n = len(events)
    kind = pd.Categorical(events["event_type"], categories=EVENT_TYPES).codes.astype(np.int64)
    kind[kind < 0] = len(EVENT_TYPES)
    numeric: list[np.ndarray] = [np.asarray(events["event_time"].to_numpy(), "datetime64[ns]").view(np.int64)]
    if "user_id" in events.columns:
        numeric.append(events["user_id"].to_numpy(np.int64))
    numeric += [kind, events["product_id"].to_numpy(np.int64)]
    if "category_id" in events.columns:
        numeric.append(events["category_id"].to_numpy(np.int64))
    if "price" in events.columns:
        price = events["price"].to_numpy(np.float64)
        no_price = np.isnan(price)  # NaN never equals itself: compare "missing" and the value apart
        numeric += [no_price, np.where(no_price, 0.0, price)]
    order = np.lexsort(numeric[::-1])
    if n < 2:
        return order.astype(np.int64)
    tied = np.ones(n - 1, bool)  # row k of the order equals row k + 1 on every numeric key
    for key in numeric:
        ordered = key[order]
        tied &= ordered[1:] == ordered[:-1]
    if not tied.any():
        return order.astype(np.int64)
    # Rows in runs of numeric ties, in run order: sort each run by the text columns.
    in_run = np.r_[tied, False] | np.r_[False, tied]
    positions = np.flatnonzero(in_run)
    run = np.cumsum(np.r_[True, ~tied])[positions]
    rows = order[positions]
    texts = [pd.factorize(events[name].to_numpy(object)[rows], sort=True)[0]
             for name in ("brand", "category_code", "user_session") if name in events.columns]
    order[positions] = rows[np.lexsort((*texts[::-1], run))]
    return order.astype(np.int64)


def canonical_rank(events: pd.DataFrame) -> np.ndarray:
    """(N,) int64: each row's position in :func:`canonical_order` (a total order key for sorting with
    ``np.lexsort``: within a user, it orders by time, then event type, then item, then the rest)."""
    order = canonical_order(events)
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order), dtype=np.int64)
    return rank
