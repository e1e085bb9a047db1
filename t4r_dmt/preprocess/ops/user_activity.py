"""UserActivity: dense user features computed strictly from the past.

Per request (user u, time t), from u's events with time < t:

* ``user_{b}_count_{h}``: events of behaviour b in ``[t - h, t)`` for h in 1d / 7d / 30d;
* ``user_purchase_power``: mean price of u's purchases (NaN if none, filled downstream).

How u's events match the candidate (user-item, user-category counts ...) is ``Interactions``.

Raw float64 values; the workflow fills, log-transforms and normalises them. Same as-of rule as
``BehaviorSequences``: an event at exactly t does not count.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from t4r_dmt.preprocess.asof import unique_queries
from t4r_dmt.preprocess.config import COUNT_HORIZONS
from t4r_dmt.preprocess.lists import block_frame, to_numpy
from t4r_dmt.preprocess.ops.history_operator import HistoryOperator
from t4r_dmt.schema import BEHAVIORS


def activity_columns(horizons: dict[str, pd.Timedelta] = COUNT_HORIZONS) -> list[str]:
    """Names of the outputs, in order."""
    names = [f"user_{b}_count_{h}" for b in BEHAVIORS for h in horizons]
    names.append("user_purchase_power")
    return names


class UserActivity(HistoryOperator):
    """Windowed counts and purchase power.

    Input columns: ``user_id``, ``request_ts`` (int64 ns). Output: float64 columns of
    ``activity_columns()``, shape (rows,).
    """

    def __init__(self, store_path: Any, horizons: dict[str, pd.Timedelta] = COUNT_HORIZONS) -> None:
        super().__init__(store_path)
        self.horizons = {name: int(pd.Timedelta(delta).value) for name, delta in horizons.items()}
        self.outputs = {name: (np.dtype(np.float64), None) for name in activity_columns(horizons)}

    def compute(self, df: Any) -> Any:
        user = to_numpy(df["user_id"]).astype(np.int64, copy=False)
        time = to_numpy(df["request_ts"]).astype(np.int64, copy=False)
        block = np.zeros((len(self.outputs), len(user)), dtype=np.float64)  # (columns, rows): one frame block
        out = dict(zip(self.outputs, block, strict=True))
        for rows, history in self.by_bucket(user):
            (q_user, q_time), inverse = unique_queries(user[rows], time[rows])
            for behavior in BEHAVIORS:
                events = history[behavior]
                shifted = [q_time - delta for delta in self.horizons.values()]
                bounds = events.index("user").bounds([q_user], [q_time, *shifted])
                end = bounds.ends[0]
                for name, since in zip(self.horizons, bounds.ends[1:], strict=True):
                    out[f"user_{behavior}_count_{name}"][rows] = (end - since)[inverse]
                if behavior == "order":
                    out["user_purchase_power"][rows] = _mean_before(
                        events.price[bounds.order], bounds.group_start, end
                    )[inverse]
        return block_frame(block, list(self.outputs), like=df)


def _mean_before(sorted_price: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Mean of ``sorted_price[start:end]`` per query, NaN prices ignored, NaN when empty."""
    known = ~np.isnan(sorted_price)
    total = np.concatenate([[0.0], np.cumsum(np.where(known, sorted_price, 0.0))])
    count = np.concatenate([[0], np.cumsum(known)])
    n = count[end] - count[start]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, (total[end] - total[start]) / np.maximum(n, 1), np.nan)
