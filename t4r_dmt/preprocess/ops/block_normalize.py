"""BlockNormalize: NVTabular's ``Normalize`` (``(x - mean) / std``) on all its columns at once.

Why: ``Normalize`` builds its output column by column (one pandas block each), which the next selection
consolidates again; with ~100 dense columns that is most of its time. Here each group of columns of one dtype
is read as a 2-D array and standardised with the per-column moments broadcast along the rows: numpy does the
same arithmetic elementwise in the same dtype as ``Normalize``'s ``Series - float`` (a float32 column against
its mean rounded to float32, a float64 column in float64), then casts to the output dtype, so the values are
the same bit for bit. The fitted statistics (``means``, ``stds``) and the fit are ``Normalize``'s. List
columns, cuDF frames and moments whose scalar would change a column's dtype take ``Normalize``'s own path.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from merlin.dag.selector import ColumnSelector
from nvtabular import ops as nvt_ops

from t4r_dmt.preprocess.ops.block_log import column_values, dtype_groups, numeric_block


class BlockNormalize(nvt_ops.Normalize):
    """Standardised columns, ``output_dtype`` (float32 in the ranking workflow), shape (rows,) each."""

    def transform(self, col_selector: ColumnSelector, df: Any) -> Any:
        names = list(col_selector.names)
        if not numeric_block(df, names) or df.columns.duplicated().any():
            return super().transform(col_selector, df)
        dtypes = df.dtypes.to_dict()
        if not all(self._keeps_dtype(dtypes[name], name) for name in names):
            return super().transform(col_selector, df)
        out = np.empty((len(names), len(df)), dtype=self.output_dtype)  # (columns, rows): one C-ordered block
        for dtype, columns in dtype_groups(df, names).items():
            selected = [names[i] for i in columns]
            values = column_values(df, selected)  # (k, rows) of dtype; read only (may be a view of df)
            means = np.array([self.means[n] for n in selected], dtype=dtype)[:, None]
            stds = np.array([self.stds[n] for n in selected])
            scaled = stds > 0
            in_place = dtype == out.dtype and columns == list(range(columns[0], columns[-1] + 1))
            result = out[columns[0] : columns[-1] + 1] if in_place else np.empty(values.shape, dtype=dtype)
            np.subtract(values, means, out=result)
            if scaled.all():
                result /= stds.astype(dtype)[:, None]
            elif scaled.any():  # Normalize: a column without spread is only shifted
                result[scaled] /= stds[scaled].astype(dtype)[:, None]
            if not in_place:
                out[columns] = result
        return pd.DataFrame(out.T, index=df.index, columns=names)

    def _keeps_dtype(self, dtype: np.dtype, name: str) -> bool:
        """True when ``column - mean`` and ``/ std`` keep the float column's dtype (numpy's value-based casting
        of a Python float), as the broadcast arithmetic assumes; integer columns take Normalize's path."""
        return bool(
            dtype.kind == "f"
            and np.result_type(dtype, self.means[name]) == dtype
            and np.result_type(dtype, self.stds[name]) == dtype
        )
