"""``Categorify`` that survives all-null columns on CPU (NVTabular 23.08).

Two failures of the stock operator when a column holds only nulls (YOOCHOOSE has no brand and no
category; any small partition of a sparse column can be all null):

* ``fit`` writes no ``unique.<col>.parquet`` when the only value seen is null, and ``transform`` then
  fails with ``FileNotFoundError``;
* ``transform`` of a partition whose column is entirely null fails with ``IndexError`` on
  ``df[col].dropna().iloc[0]`` (categorify.py, ``_encode``), even when the vocabulary exists.

This subclass writes an empty vocabulary in the first case and encodes an all-null partition as the
null code (1) in the second; everything else is the stock operator.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from merlin.dag import ColumnSelector
from nvtabular import ops

from t4r_dmt.schema import NULL_CODE


class NullSafeCategorify(ops.Categorify):
    """``ops.Categorify`` with the two all-null fixes described in the module docstring."""

    def fit_finalize(self, categories: Any) -> None:
        super().fit_finalize(categories)
        for name, path in self.categories.items():
            if isinstance(path, str) and not Path(path).exists():
                empty = pd.DataFrame({name: pd.Series([], dtype=object),
                                      f"{name}_size": pd.Series([], dtype=np.int64)})
                empty.to_parquet(path)

    def transform(self, col_selector: ColumnSelector, df: Any) -> Any:
        all_null = [name for name in col_selector.names if len(df) and bool(df[name].isna().all())]
        if not all_null:
            return super().transform(col_selector, df)
        rest = [name for name in col_selector.names if name not in all_null]
        new_df = super().transform(ColumnSelector(rest), df) if rest else df.copy(deep=False)
        for name in all_null:
            new_df[name] = np.full(len(df), NULL_CODE, dtype=self.output_dtype)
        return new_df
