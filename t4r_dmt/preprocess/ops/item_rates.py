"""ItemRates: each item's smoothed click-through and conversion rates as of the request, as log lifts.

For a row (item i, request time t), from whole hours only (``hour_of``), with ``a`` = ``smoothing``:

* CTR from the ranking rows' impressions and clicks of the hours that ended at least ``delay`` before t
  (a click label is only known once the impression has had time to be clicked; ``delay`` is that
  allowance, ``rate_delay`` of the preprocessing config, 1 hour by default)::

      item_ctr_lift = log((clicks_i + a * ctr) / (impressions_i + a)) - log(ctr)

  With ``position_debias`` (an impression log with positions) the denominator counts each impression by
  the click rate of the position it was shown at (clicks over expected clicks, COEC; Zhang and Jones 2007),
  so an item the logging policy kept at the top does not look relevant for it::

      item_ctr_lift = log((clicks_i + a * ctr) / (expected_clicks_i + a * ctr))

  (``ctr * impressions_i`` in place of ``expected_clicks_i`` gives the plain lift above).

* CVR from the event log's views and purchases of the hours that ended before t (events carry their own
  time, so no allowance is needed)::

      item_cvr_lift = log((purchases_i + a * cvr) / (views_i + a)) - log(cvr)

``ctr`` / ``cvr`` are the global rates of the same hours (the prior). A lift is 0 for an item that rates
like the average and wherever nothing is known yet (no earlier hour with data): the features are defined
on every window, the first one included, so the scaling fitted on the first windows sees them vary.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from t4r_dmt.preprocess.history import HOUR_NS, ItemHourCounts, hour_of
from t4r_dmt.preprocess.lists import new_frame, to_numpy
from t4r_dmt.preprocess.ops.history_operator import HistoryOperator

RATE_COLUMNS: tuple[str, ...] = ("item_ctr_lift", "item_cvr_lift")


class ItemRates(HistoryOperator):
    """Smoothed item CTR / CVR lifts as of the request.

    Input columns: ``product_id`` (int64), ``request_ts`` (int64 ns). Output: ``item_ctr_lift``,
    ``item_cvr_lift`` (float64), shape (rows,).

    Parameters
    ----------
    store_path : str or Path
        Folder of the ``HistoryStore`` (its per-hour item counts).
    smoothing : float
        Pseudo-count ``a`` (> 0).
    delay_ns : int
        Impressions count for the CTR once their hour ended at least this long before the request (>= 0).
    position_debias : bool
        Clicks over expected clicks given the positions shown (the store must hold ``expected_clicks``).
    """

    def __init__(self, store_path: Any, smoothing: float, delay_ns: int = HOUR_NS,
                 position_debias: bool = False) -> None:
        super().__init__(store_path)
        if smoothing <= 0:
            raise ValueError(f"smoothing must be > 0, got {smoothing}")
        if delay_ns < 0:
            raise ValueError(f"delay_ns must be >= 0, got {delay_ns}")
        self.smoothing = float(smoothing)
        self.delay_ns = int(delay_ns)
        self.position_debias = bool(position_debias)
        self.outputs = {name: (np.dtype(np.float64), None) for name in RATE_COLUMNS}

    def compute(self, df: Any) -> Any:
        item = to_numpy(df["product_id"]).astype(np.int64, copy=False)
        time = to_numpy(df["request_ts"]).astype(np.int64, copy=False)
        table = self.store.item_hours()
        # Hours h < bound ended at or before the bound's start: (h + 1) * HOUR_NS <= bound * HOUR_NS <= limit.
        shown_before = hour_of(time - self.delay_ns)
        logged_before = hour_of(time)
        bounds = table.index("product").bounds([item], [shown_before, logged_before])
        start = bounds.group_start
        sums = {
            "impressions": _sum_range(table.running_sum("impressions"), start, bounds.ends[0]),
            "clicks": _sum_range(table.running_sum("clicks"), start, bounds.ends[0]),
            "views": _sum_range(table.running_sum("views"), start, bounds.ends[1]),
            "orders": _sum_range(table.running_sum("orders"), start, bounds.ends[1]),
        }
        totals = _totals_before(table, {"impressions": shown_before, "clicks": shown_before,
                                        "views": logged_before, "orders": logged_before})
        if getattr(self, "position_debias", False):  # workflows pickled before the option read False
            if table.expected_clicks is None:
                raise ValueError("position_debias needs the impressions' positions: the history store has no "
                                 "expected_clicks (was the ranking data built from an impression log?)")
            expected = _sum_range(table.running_sum("expected_clicks"), start, bounds.ends[0])
            ctr = _coec_lift(sums["clicks"], expected, totals["clicks"], totals["impressions"], self.smoothing)
        else:
            ctr = _lift(sums["clicks"], sums["impressions"], totals["clicks"], totals["impressions"], self.smoothing)
        cvr = _lift(sums["orders"], sums["views"], totals["orders"], totals["views"], self.smoothing)
        return new_frame({"item_ctr_lift": ctr, "item_cvr_lift": cvr}, like=df)


def _sum_range(running: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Sums of the rows ``[start, end)`` (Q,) from a running sum ``[0, cumsum(values)]``."""
    return running[end] - running[start]


def _totals_before(table: ItemHourCounts, bound: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per row, the sum over all items of each count in the hours ``< bound[name]``."""
    out = {}
    for name, limit in bound.items():
        hours, cumulative = table.hourly_running_sum(name)
        out[name] = cumulative[np.searchsorted(hours, limit, side="left")]
    return out


def _coec_lift(clicks: np.ndarray, expected: np.ndarray, all_clicks: np.ndarray, all_impressions: np.ndarray,
               a: float) -> np.ndarray:
    """``log((clicks + a p) / (expected + a p))`` with ``p = all_clicks / all_impressions``; 0 where ``p`` is 0
    or undefined."""
    with np.errstate(invalid="ignore", divide="ignore"):
        prior = np.where(all_impressions > 0, all_clicks / np.maximum(all_impressions, 1.0), 0.0)
        known = prior > 0
        lift = np.log(np.where(known, clicks + a * prior, 1.0)) - np.log(np.where(known, expected + a * prior, 1.0))
    return np.where(known, lift, 0.0)


def _lift(hits: np.ndarray, trials: np.ndarray, all_hits: np.ndarray, all_trials: np.ndarray, a: float) -> np.ndarray:
    """``log((hits + a p) / (trials + a)) - log(p)`` with ``p = all_hits / all_trials``; 0 where ``p`` is 0 or
    undefined (nothing known, or no success anywhere yet)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        prior = np.where(all_trials > 0, all_hits / np.maximum(all_trials, 1.0), 0.0)
        known = prior > 0
        rate = (hits + a * prior) / (trials + a)
        lift = np.log(np.where(known, rate, 1.0)) - np.log(np.where(known, prior, 1.0))
    return np.where(known, lift, 0.0)
