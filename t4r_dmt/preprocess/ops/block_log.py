"""BlockLogOp: NVTabular's ``LogOp`` (``log(1 + x)`` as float32) on all its columns at once.

Why: ``LogOp`` replaces its columns one by one (``df[name] = ...``); on a frame whose columns share one pandas
block (a selection of a wide operator output, e.g. the 54 interaction counts) each replacement splits the
block and copies it, so the op costs O(columns^2). Here the columns are read as one 2-D array, transformed
with the same numpy calls elementwise (``astype(float32) + 1``, ``np.log``), and returned as one block: the
same values, bit for bit. List columns, cuDF frames and non-numeric dtypes take ``LogOp``'s own path.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from merlin.dag.selector import ColumnSelector
from nvtabular import ops as nvt_ops

from t4r_dmt.preprocess.lists import block_rows


def numeric_block(df: Any, names: list[str]) -> bool:
    """True when ``df`` is a pandas frame whose columns ``names`` are all plain numpy ints or floats (the block
    operators' fast path); list, object, extension and cuDF columns are not."""
    if not isinstance(df, pd.DataFrame) or not names:
        return False
    dtypes = df.dtypes.to_dict()
    return all(isinstance(dtypes[name], np.dtype) and dtypes[name].kind in "iuf" for name in names)


def dtype_groups(df: pd.DataFrame, names: list[str]) -> dict[np.dtype, list[int]]:
    """Positions in ``names`` of the columns of each dtype of ``df`` (in order of first appearance)."""
    dtypes = df.dtypes.to_dict()
    groups: dict[np.dtype, list[int]] = {}
    for i, name in enumerate(names):
        groups.setdefault(dtypes[name], []).append(i)
    return groups


def column_values(df: pd.DataFrame, names: list[str]) -> np.ndarray:
    """The columns ``names`` of ``df`` (all of one dtype) as one (len(names), rows) array, to be read only: a view
    of ``df``'s data when they are adjacent columns of one pandas block (no ``df[names]`` copy), else a copy."""
    rows = block_rows(df, names)
    return rows if rows is not None else df[names].to_numpy().T


class BlockLogOp(nvt_ops.LogOp):
    """``log(1 + x)`` of every selected column as float32, shape (rows,) each; output: the selected columns."""

    def transform(self, col_selector: ColumnSelector, df: Any) -> Any:
        names = list(col_selector.names)
        if not numeric_block(df, names) or df.columns.duplicated().any():
            return super().transform(col_selector, df)
        # LogOp: np.log(column.astype(float32) + 1), column by column. Here (columns, rows), one column per row,
        # in a new C-ordered block (to_numpy may return a view of df when its columns are float32 already).
        out = np.empty((len(names), len(df)), dtype=self.output_dtype)
        for columns in dtype_groups(df, names).values():  # the astype, from each column's own dtype
            out[columns] = column_values(df, [names[i] for i in columns])
        out += 1
        np.log(out, out=out)
        return pd.DataFrame(out.T, index=df.index, columns=names)
