"""A merlin.dag executor that tolerates partitions whose list columns hold only empty lists.

While fitting, merlin's ``LocalExecutor`` re-derives every output column's dtype from the data; for a
list column it reads the dtype of the first leaf, and a partition where nobody has, say, any cart event
has no leaf at all, so fitting fails (``Merlin doesn't provide a default dtype mapping for None``). Here
such a column keeps the dtype its operator declared. Everything else is merlin's own behaviour.

List columns backed by Arrow (``pd.ArrowDtype``, see ``lists.py``) get their leaf dtype from their
first leaf directly, as merlin would, instead of merlin's walk over the rows (which converts every row
to a Python list until it meets a leaf: slow when most rows are empty, e.g. order sequences).
"""

from __future__ import annotations

from typing import Any

import nvtabular as nvt
import pandas as pd
from merlin.core.dispatch import is_list_dtype, list_val_dtype
from merlin.dag.executors import LocalExecutor
from merlin.dtypes.shape import DefaultShapes

from t4r_dmt.preprocess.lists import arrow_list


class ListSafeExecutor(LocalExecutor):
    """``LocalExecutor`` whose dtype capture skips list columns without any leaf."""

    def _build_schema_from_data(self, output_data: Any, col_name: str, output_col_schema: Any) -> Any:
        column = output_data[col_name]
        if isinstance(column.dtype, pd.ArrowDtype):
            arrow = arrow_list(column)
            leaves = arrow.flatten() if arrow is not None else None
            if leaves is None or len(leaves) == 0:
                return output_col_schema
            # merlin: infer_dtype_from(first leaf of the flattened rows), shape LIST unless declared
            dtype = pd.core.dtypes.cast.infer_dtype_from(leaves[0].as_py())[0]
            shape = output_col_schema.shape
            if not shape.is_list or shape.is_unknown:
                shape = DefaultShapes.LIST
            return output_col_schema.with_dtype(dtype).with_shape(shape)
        if is_list_dtype(column) and list_val_dtype(column) is None:
            return output_col_schema
        return super()._build_schema_from_data(output_data, col_name, output_col_schema)


def use_list_safe_executor(workflow: nvt.Workflow) -> nvt.Workflow:
    """Swap the per-partition executor of ``workflow`` (its Dask executor keeps its settings)."""
    inner = ListSafeExecutor()
    inner.target_format = workflow.executor._executor.target_format
    workflow.executor._executor = inner
    return workflow
