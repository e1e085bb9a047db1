"""CandidateAttributes: category, brand and price of each candidate item as known at request time.

The latest values seen in the events strictly before the request time (an as-of join on
``(product_id, time)``); an item never seen before falls back to the optional items file, and
otherwise gets category ``-1`` (unknown), brand ``None`` (null) and price NaN.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from t4r_dmt.preprocess.lists import new_frame, to_numpy
from t4r_dmt.preprocess.ops.history_operator import HistoryOperator

UNKNOWN_CATEGORY = -1


class CandidateAttributes(HistoryOperator):
    """As-of item attributes.

    Input columns: ``product_id`` (int64), ``request_ts`` (int64 ns). Output columns, shape (rows,):
    ``item_category`` (int64 raw category id), ``item_brand`` (str or None), ``item_price`` (float64).
    """

    def __init__(self, store_path: Any) -> None:
        super().__init__(store_path)
        self.outputs = {
            "item_category": (np.dtype(np.int64), None),
            "item_brand": (np.dtype("O"), None),
            "item_price": (np.dtype(np.float64), None),
        }

    def compute(self, df: Any) -> Any:
        item = to_numpy(df["product_id"]).astype(np.int64, copy=False)
        time = to_numpy(df["request_ts"]).astype(np.int64, copy=False)
        table = self.store.item_table()
        bounds = table.index("product").bounds([item], [time])
        end = bounds.ends[0]
        seen = end > bounds.group_start
        latest = bounds.order[np.maximum(end - 1, 0)] if len(table.product) else np.zeros(0, np.int64)
        category = np.full(len(item), UNKNOWN_CATEGORY, dtype=np.int64)
        brand = np.full(len(item), None, dtype=object)
        price = np.full(len(item), np.nan)
        if seen.any():
            category[seen] = table.category[latest[seen]]
            brand[seen] = table.brand[latest[seen]]
            price[seen] = table.price[latest[seen]]
        static = self.store.static_items()
        if static is not None and (~seen).any():
            _fill_from_items(static, item, ~seen, category, brand, price)
        return new_frame({"item_category": category, "item_brand": brand, "item_price": price}, like=df)


def _fill_from_items(
    static: pd.DataFrame,
    item: np.ndarray,
    missing: np.ndarray,
    category: np.ndarray,
    brand: np.ndarray,
    price: np.ndarray,
) -> None:
    """Fill rows ``missing`` in place from the static items table (product_id is unique there)."""
    position = pd.Index(static["product_id"].to_numpy(np.int64)).get_indexer(item[missing])
    found = position >= 0
    rows = np.flatnonzero(missing)[found]
    position = position[found]
    category[rows] = static["category_id"].to_numpy(np.int64)[position]
    brand[rows] = static["brand"].to_numpy(object)[position]
    price[rows] = static["price"].to_numpy(np.float64)[position]
