"""Workaround: merlin.dag's dtype capture fails on (and crawls through) list columns.

Applies to merlin-core 23.08 / NVTabular 23.08 (``LocalExecutor._build_schema_from_data``); docs/STACK_NOTES.md,
"NVTabular / merlin on CPU" (the two executor entries).

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
import pyarrow as pa
import pyarrow.compute as pc
from merlin.core.dispatch import is_list_dtype, list_val_dtype
from merlin.dag.executors import LocalExecutor
from merlin.dtypes.shape import DefaultShapes


class ListSafeExecutor(LocalExecutor):
    """``LocalExecutor`` whose dtype capture skips list columns without any leaf."""

    def _build_schema_from_data(self, output_data: Any, col_name: str, output_col_schema: Any) -> Any:
        column = output_data[col_name]
        if isinstance(column.dtype, pd.ArrowDtype):
            leaves = _plain_list_leaves(column)
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


def _plain_list_leaves(column: pd.Series) -> pa.Array | None:
    """The values of an Arrow-backed list column without null rows, in row order; None for other columns."""
    arrow_type = column.dtype.pyarrow_dtype
    if not (pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type)):
        return None
    chunked = column.array.__arrow_array__()
    if chunked.null_count or pa.types.is_null(arrow_type.value_type):
        return None
    return pc.list_flatten(chunked.combine_chunks())


def use_list_safe_executor(workflow: nvt.Workflow) -> nvt.Workflow:
    """Swap the per-partition executor of ``workflow`` (its Dask executor keeps its settings)."""
    inner = ListSafeExecutor()
    inner.target_format = workflow.executor._executor.target_format
    workflow.executor._executor = inner
    return workflow
