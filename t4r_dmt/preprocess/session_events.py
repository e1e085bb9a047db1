"""Per-event preparation for the session ETL: validation, repeat removal, session ids and windows.

This is the pandas part of :mod:`t4r_dmt.preprocess.sessions`, done before the NVTabular workflow (as in
T4R's own examples, which remove repeats with cuDF before fitting): it turns the canonical events
DataFrame into the *prepared events* frame that the session workflow reads.

Prepared events (one row per kept interaction, sorted by session, then time, then the canonical order of
same-time events: event type, item ..., :func:`t4r_dmt.data.canonical_order`; sessions are numbered in
the order of their first event, so nothing depends on the order of the input rows):

=============  ============  ==================================================================
column         dtype         meaning
=============  ============  ==================================================================
session_id     int64         stable 63-bit hash of ``user_session`` (the Groupby key)
item_id        int64         ``product_id``
category       Int64         ``category_id``; ``-1`` (no category) becomes null -> code 1
brand          object        ``brand`` (str or None)
event_type     object        the strongest behaviour of the collapsed run (see below)
timestamp      int64         event time, Unix seconds (UTC)
event_seq      int64         0..n-1 in (session, time, canonical) order: the Groupby sort key
window         int64         1-based window of the session's first event
=============  ============  ==================================================================

Consecutive repeats: a run of consecutive events of one session on the same item becomes one
interaction (T4R's ``remove_consecutive_interactions``): it keeps the first event's time and
attributes, and its ``event_type`` is the strongest behaviour of the run (purchase > cart >
remove_from_cart > view), so that "view A, cart A, purchase A" reads as one purchase of A instead of
losing the cart and purchase as T4R's click-only datasets would.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from t4r_dmt.data.canonical import canonical_rank
from t4r_dmt.errors import InputError
from t4r_dmt.windows import first_window_start, window_delta, window_numbers

logger = logging.getLogger(__name__)

#: The source label used in error messages: the events come in as a DataFrame, not a file.
EVENTS_SOURCE = "events"

#: Behaviours in vocabulary order: Categorify codes 3, 4, 5, 6 (fixed, whatever the data holds).
BEHAVIOURS: tuple[str, ...] = ("view", "cart", "purchase", "remove_from_cart")

# Which behaviour survives when a run of repeats collapses: the strongest (highest) one.
_STRENGTH = {"view": 0, "remove_from_cart": 1, "cart": 2, "purchase": 3}
_BY_STRENGTH = np.array(sorted(_STRENGTH, key=_STRENGTH.__getitem__), dtype=object)

REQUIRED_COLUMNS: tuple[str, ...] = (
    "event_time", "event_type", "product_id", "category_id", "brand", "user_session",
)
_NOT_NULL = ("event_time", "event_type", "product_id", "category_id", "user_session")

_INT63_MASK = np.uint64(0x7FFF_FFFF_FFFF_FFFF)
_NS_PER_S = 1_000_000_000


@dataclass(frozen=True)
class PreparedEvents:
    """The workflow input and the counts the statistics report.

    Attributes
    ----------
    frame:
        The prepared events (module docstring), indexed by a dense session ordinal (non-decreasing,
        so that ``dd.from_pandas`` never splits a session across partitions).
    n_events:
        Rows of the input events.
    n_repeats_removed:
        Events folded into the previous event of their session (same item).
    session_lengths:
        ``(S,)`` int64: kept interactions per session, in ``frame`` order.
    session_windows:
        ``(S,)`` int64: 1-based window of each session.
    """

    frame: pd.DataFrame
    n_events: int
    n_repeats_removed: int
    session_lengths: np.ndarray
    session_windows: np.ndarray


def validate_events(events: pd.DataFrame) -> None:
    """Check the canonical events contract; raise :class:`InputError` naming column, row and value."""
    if not isinstance(events, pd.DataFrame):
        raise TypeError(f"events must be a pandas DataFrame, got {type(events).__name__}")
    if len(events) == 0:
        raise InputError(EVENTS_SOURCE, "no events: the session ETL needs at least one event")
    for column in REQUIRED_COLUMNS:
        if column not in events.columns:
            raise InputError(EVENTS_SOURCE, "missing required column", column=column)
    if not pd.api.types.is_datetime64_dtype(events["event_time"]):
        raise InputError(EVENTS_SOURCE, "must be datetime64[ns] (UTC, tz-naive)", column="event_time",
                         value=str(events["event_time"].dtype))
    for column in ("product_id", "category_id"):
        if not pd.api.types.is_integer_dtype(events[column]):
            raise InputError(EVENTS_SOURCE, "must be an integer column", column=column,
                             value=str(events[column].dtype))
    for column in _NOT_NULL:
        nulls = events[column].isna().to_numpy()
        if nulls.any():
            row = int(np.flatnonzero(nulls)[0])
            raise InputError(EVENTS_SOURCE, "must not be null", column=column, row=row)
    unknown = ~events["event_type"].isin(BEHAVIOURS).to_numpy()
    if unknown.any():
        row = int(np.flatnonzero(unknown)[0])
        raise InputError(EVENTS_SOURCE, f"unknown behaviour; expected one of {', '.join(BEHAVIOURS)}",
                         column="event_type", row=row, value=events["event_type"].iloc[row])


def session_hash(user_session: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Stable 63-bit ids of session strings.

    Returns
    -------
    codes:
        ``(N,)`` int64: dense ordinal of each row's session (first-appearance order).
    ids:
        ``(S,)`` int64: the hash of each distinct session, indexed by ``codes``.
    """
    codes, uniques = pd.factorize(user_session.astype(str), sort=False)
    ids = (pd.util.hash_array(np.asarray(uniques, dtype=object)) & _INT63_MASK).astype(np.int64)
    if len(np.unique(ids)) != len(ids):
        # 63-bit collisions are ~1e-3 likely at 1e8 sessions; merging two sessions silently is worse.
        raise RuntimeError("two distinct user_session values hash to the same session_id")
    return codes.astype(np.int64), ids


def _number_by_first_event(codes: np.ndarray, ids: np.ndarray, rank: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Renumber sessions in the canonical order of their first events.

    Parameters
    ----------
    codes: (N,) int64 session ordinal of each row; ids: (S,) session ids; rank: (N,) canonical rank of each row

    Returns
    -------
    The (N,) ordinals and (S,) ids in the new numbering.
    """
    first = np.full(len(ids), np.iinfo(np.int64).max, np.int64)
    np.minimum.at(first, codes, rank)
    order = np.argsort(first, kind="stable")
    renumber = np.empty(len(ids), np.int64)
    renumber[order] = np.arange(len(ids), dtype=np.int64)
    return renumber[codes], ids[order]


def prepare_events(events: pd.DataFrame, window: str) -> PreparedEvents:
    """Validate the events and build the prepared events frame (module docstring).

    Parameters
    ----------
    events:
        The canonical events DataFrame, ``(N, ...)``; rows in any order.
    window:
        A fixed-length pandas offset alias. Window 1 is the one holding the earliest event of
        ``events``; a session belongs to the window of its first event.
    """
    window_delta(window)  # a clear error for a bad alias before any work
    validate_events(events)
    codes, ids = session_hash(events["user_session"])
    rank = canonical_rank(events)
    codes, ids = _number_by_first_event(codes, ids, rank)
    time_ns = events["event_time"].to_numpy().astype("datetime64[ns]").view(np.int64)
    items = events["product_id"].to_numpy(np.int64)
    # Sort by session, then time, then the canonical tie-break (rank orders by time first).
    order = np.lexsort((rank, codes))
    sess, item = codes[order], items[order]
    run_start = np.ones(len(order), dtype=bool)
    run_start[1:] = (sess[1:] != sess[:-1]) | (item[1:] != item[:-1])
    starts = np.flatnonzero(run_start)
    strength = events["event_type"].map(_STRENGTH).to_numpy(np.int64)[order]
    behaviour = _BY_STRENGTH[np.maximum.reduceat(strength, starts)]
    kept = order[starts]

    category = pd.array(events["category_id"].to_numpy(np.int64)[kept], dtype="Int64")
    category[category == -1] = pd.NA
    brand = events["brand"].to_numpy(dtype=object)[kept]
    brand[pd.isna(brand)] = None
    frame = pd.DataFrame(
        {
            "session_id": ids[codes[kept]],
            "item_id": items[kept],
            "category": category,
            "brand": brand,
            "event_type": behaviour,
            "timestamp": time_ns[kept] // _NS_PER_S,
            "event_seq": np.arange(len(kept), dtype=np.int64),
        },
        index=pd.Index(codes[kept], name="session_ordinal"),
    )

    # Sessions in frame order: first row of each, its length and its window.
    kept_sess = codes[kept]
    first = np.ones(len(kept), dtype=bool)
    first[1:] = kept_sess[1:] != kept_sess[:-1]
    first_rows = np.flatnonzero(first)
    lengths = np.diff(np.append(first_rows, len(kept))).astype(np.int64)
    session_windows = window_numbers(time_ns[kept][first_rows], window, first_window_start(time_ns, window))
    frame["window"] = np.repeat(session_windows, lengths)

    n_repeats = len(events) - len(kept)
    logger.info("sessions: %d events -> %d after removing %d consecutive repeats; %d sessions",
                len(events), len(kept), n_repeats, len(lengths))
    return PreparedEvents(frame=frame, n_events=len(events), n_repeats_removed=n_repeats,
                          session_lengths=lengths, session_windows=session_windows)
