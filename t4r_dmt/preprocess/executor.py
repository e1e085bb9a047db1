"""A merlin.dag executor that tolerates partitions whose list columns hold only empty lists.

While fitting, merlin's ``LocalExecutor`` re-derives every output column's dtype from the data; for a
list column it reads the dtype of the first leaf, and a partition where nobody has, say, any cart event
has no leaf at all, so fitting fails (``Merlin doesn't provide a default dtype mapping for None``). Here
such a column keeps the dtype its operator declared. Everything else is merlin's own behaviour.
"""

from __future__ import annotations

from typing import Any

import nvtabular as nvt
from merlin.core.dispatch import is_list_dtype, list_val_dtype
from merlin.dag.executors import LocalExecutor


class ListSafeExecutor(LocalExecutor):
    """``LocalExecutor`` whose dtype capture skips list columns without any leaf."""

    def _build_schema_from_data(self, output_data: Any, col_name: str, output_col_schema: Any) -> Any:
        column = output_data[col_name]
        if is_list_dtype(column) and list_val_dtype(column) is None:
            return output_col_schema
        return super()._build_schema_from_data(output_data, col_name, output_col_schema)


def use_list_safe_executor(workflow: nvt.Workflow) -> nvt.Workflow:
    """Swap the per-partition executor of ``workflow`` (its Dask executor keeps its settings)."""
    inner = ListSafeExecutor()
    inner.target_format = workflow.executor._executor.target_format
    workflow.executor._executor = inner
    return workflow
