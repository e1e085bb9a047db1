"""Interactions: how the user's past behaviour matches the candidate, as of the request (strictly before).

The DMT paper's user-item interaction features ("number of clicks on the category of the item within a
time window" and the like). For a row (user u, request time t, candidate item i with category c and
brand d), per behaviour b (click, cart, order) and attribute a of the candidate (``item``, ``category``,
``brand``), over u's b-events with time < t whose attribute a equals the candidate's:

* ``{b}_{a}_count``: how many (all time); ``{b}_{a}_count_{h}``: how many in ``[t - h, t)``, h in
  1d / 7d / 30d;
* ``{b}_{a}_seq_hits``: how many of u's N most recent b-events (the behaviour sequence the model reads,
  N = its configured length) match;
* ``{b}_{a}_last_match``: 1 if u's most recent b-event matches;
* ``{b}_{a}_log_hours_since``: ``log1p`` of the hours since the most recent matching event, capped at
  ``NEVER_HOURS`` (one year), which is also the value when there is none; ``{b}_{a}_never``: 1 then;
* ``{b}_{a}_decayed``: ``sum exp(-(t - t_e) / tau)`` over the ``DECAY_DEPTH`` most recent matching events.

Raw float64 values (counts, not logs, except the time since); the workflow log-transforms the counts and
normalises everything. A candidate whose category is unknown (``-1``) or brand null matches nothing.
Same as-of rule as the behaviour sequences: an event at exactly t does not count.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from t4r_dmt.preprocess.asof import gather_ranges, unique_queries
from t4r_dmt.preprocess.config import COUNT_HORIZONS
from t4r_dmt.preprocess.history import HOUR_NS, NO_BRAND, BehaviorEvents, brand_codes
from t4r_dmt.preprocess.lists import block_frame, to_numpy
from t4r_dmt.preprocess.ops.history_operator import HistoryOperator
from t4r_dmt.schema import BEHAVIORS

#: candidate attribute -> the field of ``BehaviorEvents`` it is matched against
ATTRIBUTES: dict[str, str] = {"item": "product", "category": "category", "brand": "brand_code"}
NEVER_HOURS = 24.0 * 365.0
DECAY_DEPTH = 32


def interaction_columns(horizons: dict[str, pd.Timedelta] = COUNT_HORIZONS) -> list[str]:
    """Names of the outputs, in order: behaviour-major, then attribute, then the feature."""
    features = ["count", *(f"count_{h}" for h in horizons), "seq_hits", "last_match", "log_hours_since", "never",
                "decayed"]
    return [f"{b}_{a}_{f}" for b in BEHAVIORS for a in ATTRIBUTES for f in features]


def count_columns(horizons: dict[str, pd.Timedelta] = COUNT_HORIZONS) -> list[str]:
    """The outputs that are counts (log-transformed by the workflow): counts, sequence hits, decayed counts."""
    return [c for c in interaction_columns(horizons) if _is_count(c)]


def _distinct_values(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(distinct values (D,), index (R,) into them)`` of an int64 column, the key form of ``AsOfIndex.bounds``."""
    index, distinct = pd.factorize(values)
    return np.asarray(distinct), index


def _is_count(column: str) -> bool:
    return column.rsplit("_", 1)[-1] in ("count", "hits", "decayed") or "_count_" in column


class Interactions(HistoryOperator):
    """User-candidate match features of every behaviour and attribute.

    Input columns: ``user_id``, ``request_ts`` (int64 ns), ``product_id``, ``item_category`` (raw id,
    ``-1`` unknown), ``item_brand`` (str or None): the candidate's attributes as of the request. Output:
    float64 columns of ``interaction_columns()``, shape (rows,).

    Parameters
    ----------
    store_path : str or Path
        Folder of the ``HistoryStore``.
    lengths : dict
        N per behaviour (the sequence lengths), e.g. ``{"click": 50, "cart": 10, "order": 10}``.
    decay_ns : int
        The time constant tau of the decayed count, in nanoseconds (> 0).
    """

    def __init__(self, store_path: Any, lengths: dict[str, int], decay_ns: int,
                 horizons: dict[str, pd.Timedelta] = COUNT_HORIZONS) -> None:
        super().__init__(store_path)
        if set(lengths) != set(BEHAVIORS):
            raise ValueError(f"lengths must give N for each of {list(BEHAVIORS)}, got {sorted(lengths)}")
        if decay_ns <= 0:
            raise ValueError(f"decay_ns must be > 0, got {decay_ns}")
        self.lengths = dict(lengths)
        self.decay_ns = int(decay_ns)
        self.horizons = {name: int(pd.Timedelta(delta).value) for name, delta in horizons.items()}
        self.outputs = {name: (np.dtype(np.float64), None) for name in interaction_columns(horizons)}

    def compute(self, df: Any) -> Any:
        user = to_numpy(df["user_id"]).astype(np.int64, copy=False)
        time = to_numpy(df["request_ts"]).astype(np.int64, copy=False)
        query = {
            "item": to_numpy(df["product_id"]).astype(np.int64, copy=False),
            "category": to_numpy(df["item_category"]).astype(np.int64, copy=False),
            "brand": brand_codes(to_numpy(df["item_brand"])),
        }
        known = {"item": np.ones(len(user), dtype=bool), "category": query["category"] >= 0,
                 "brand": query["brand"] != NO_BRAND}
        # (columns, rows): one frame block, the counts first: the workflow's two selections of it (the counts it
        # log-transforms, the rest) are then runs of adjacent columns, read without a copy.
        names = [c for c in self.outputs if _is_count(c)] + [c for c in self.outputs if not _is_count(c)]
        block = np.zeros((len(names), len(user)), dtype=np.float64)
        out = dict(zip(names, block, strict=True))
        for rows, history in self.by_bucket(user):
            requests = unique_queries(user[rows], time[rows])  # the bucket's distinct (user, time), for every behaviour
            values = {a: _distinct_values(q[rows]) for a, q in query.items()}  # looked up once per distinct value
            for behavior in BEHAVIORS:
                self._behavior(history[behavior], behavior, user[rows], time[rows], requests,
                               {a: (q[rows], known[a][rows], values[a]) for a, q in query.items()}, out, rows)
        return block_frame(block, names, like=df)

    def _behavior(self, events: BehaviorEvents, behavior: str, user: np.ndarray, time: np.ndarray,
                  requests: tuple[list[np.ndarray], np.ndarray],
                  query: dict[str, tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]],
                  out: dict[str, np.ndarray], rows: np.ndarray | slice) -> None:
        """Fill ``out[...][rows]`` for one behaviour; all arrays are (R,) for the R rows of one bucket.

        A bucket's events are stored sorted by (user, time, tie-break), so within a user "row index < X" is "earlier
        than the event at X": the user-level bounds (one search per distinct request) turn t, t - h and the first
        event of the sequence into row positions, and one (user, value) index over row positions counts the
        matches before each of them."""
        (q_user, q_time), inverse = requests
        per_user = events.index("user").bounds([q_user], [q_time, *(q_time - d for d in self.horizons.values())])
        end = per_user.ends[0][inverse]
        first = per_user.group_start[inverse]
        positions = [end, np.maximum(first, end - self.lengths[behavior]), *(e[inverse] for e in per_user.ends[1:])]
        has_last = end > first
        last_event = np.maximum(end - 1, 0)
        for attribute, field in ATTRIBUTES.items():
            values, known, distinct = query[attribute]
            column = getattr(events, field)
            prefix = f"{behavior}_{attribute}_"
            pair = events.position_index(field).bounds([(q_user, inverse), distinct], positions)
            start = pair.group_start
            stop, seq_from, *since = (np.where(known, e, start) for e in pair.ends)
            n = stop - start
            out[prefix + "count"][rows] = n
            for name, bound in zip(self.horizons, since, strict=True):
                out[f"{prefix}count_{name}"][rows] = stop - bound
            out[prefix + "seq_hits"][rows] = stop - seq_from
            if len(column):
                out[prefix + "last_match"][rows] = has_last & known & (column[last_event] == values)
            seen = n > 0
            latest = events.time[pair.order[np.maximum(stop - 1, 0)]] if len(column) else np.zeros(len(user), np.int64)
            hours = np.where(seen, (time - latest) / HOUR_NS, NEVER_HOURS)
            out[prefix + "log_hours_since"][rows] = np.log1p(np.minimum(hours, NEVER_HOURS))
            out[prefix + "never"][rows] = ~seen
            out[prefix + "decayed"][rows] = self._decayed(events, pair.order, start, stop, time)

    def _decayed(self, events: BehaviorEvents, order: np.ndarray, start: np.ndarray, stop: np.ndarray,
                 time: np.ndarray) -> np.ndarray:
        """``sum exp(-(t - t_e) / tau)`` over the last ``DECAY_DEPTH`` events of ``order[start:stop]``; (R,)."""
        picked, offsets = gather_ranges(order, np.maximum(start, stop - DECAY_DEPTH), stop)
        row = np.repeat(np.arange(len(time)), np.diff(offsets))
        weight = np.exp(-(time[row] - events.time[picked]) / self.decay_ns)
        return np.bincount(row, weights=weight, minlength=len(time))
