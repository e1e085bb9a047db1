"""ItemRates: each item's smoothed click-through and conversion rates from EARLIER windows only.

For a row of window w and item i, with ``imps``, ``clicks``, ``orders`` summed over i's ranking rows of
windows ``1..w-1`` and the global rates of those windows as priors::

    item_ctr = (clicks + a * prior_ctr) / (imps + a)
    item_cvr = (orders + a * prior_cvr) / (clicks + a)

``a`` is ``rate_smoothing``. Window 1 has no past: both rates are 0 there.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from t4r_dmt.preprocess.lists import new_frame, to_numpy
from t4r_dmt.preprocess.ops.history_operator import HistoryOperator


class ItemRates(HistoryOperator):
    """Smoothed item CTR / CVR from earlier windows.

    Input columns: ``product_id`` (int64), ``window`` (int64, 1-based). Output: ``item_ctr``,
    ``item_cvr`` (float64), shape (rows,).
    """

    def __init__(self, store_path: Any, smoothing: float) -> None:
        super().__init__(store_path)
        if smoothing <= 0:
            raise ValueError(f"smoothing must be > 0, got {smoothing}")
        self.smoothing = float(smoothing)
        self.outputs = {"item_ctr": (np.dtype(np.float64), None), "item_cvr": (np.dtype(np.float64), None)}

    def compute(self, df: Any) -> Any:
        item = to_numpy(df["product_id"]).astype(np.int64, copy=False)
        window = to_numpy(df["window"]).astype(np.int64, copy=False)
        table = self.store.item_windows()
        counts = {"impressions": table.impressions, "clicks": table.clicks, "orders": table.orders}
        bounds = table.index("product").bounds([item], [window])
        past = {name: _sum_before(values[bounds.order], bounds.group_start, bounds.ends[0])
                for name, values in counts.items()}
        prior = _global_rates_before(table.time, counts, window)
        a = self.smoothing
        ctr = (past["clicks"] + a * prior["ctr"]) / (past["impressions"] + a)
        cvr = (past["orders"] + a * prior["cvr"]) / (past["clicks"] + a)
        return new_frame({"item_ctr": ctr, "item_cvr": cvr}, like=df)


def _sum_before(sorted_values: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    total = np.concatenate([[0.0], np.cumsum(sorted_values)])
    return total[end] - total[start]


def _global_rates_before(
    table_window: np.ndarray, counts: dict[str, np.ndarray], window: np.ndarray
) -> dict[str, np.ndarray]:
    """Global CTR and CVR of windows ``< window`` per row (0 where there is no earlier data)."""
    n_windows = int(max(table_window.max(initial=0), window.max(initial=0))) + 1
    per_window = {
        name: np.bincount(table_window, weights=values, minlength=n_windows) for name, values in counts.items()
    }
    before = {name: np.concatenate([[0.0], np.cumsum(v)])[window] for name, v in per_window.items()}
    with np.errstate(invalid="ignore", divide="ignore"):
        ctr = np.where(before["impressions"] > 0, before["clicks"] / before["impressions"], 0.0)
        cvr = np.where(before["clicks"] > 0, before["orders"] / before["clicks"], 0.0)
    return {"ctr": ctr, "cvr": cvr}
