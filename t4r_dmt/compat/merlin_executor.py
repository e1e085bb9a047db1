"""Workaround: merlin.dag's dtype capture fails on (and crawls through) list columns; its executor recomputes and
copies.

Applies to merlin-core 23.08 / NVTabular 23.08 (``LocalExecutor._build_schema_from_data``, ``_execute_node``,
``_merge_upstream_columns``); docs/STACK_NOTES.md, "NVTabular / merlin on CPU" (the executor entries).

While fitting, merlin's ``LocalExecutor`` re-derives every output column's dtype from the data; for a
list column it reads the dtype of the first leaf, and a partition where nobody has, say, any cart event
has no leaf at all, so fitting fails (``Merlin doesn't provide a default dtype mapping for None``). Here
such a column keeps the dtype its operator declared. Everything else is merlin's own behaviour.

List columns backed by Arrow (``pd.ArrowDtype``, see ``lists.py``) get their leaf dtype from their
first leaf directly, as merlin would, instead of merlin's walk over the rows (which converts every row
to a Python list until it meets a leaf: slow when most rows are empty, e.g. order sequences).

Costs of merlin's executor that grow with the number of columns and nodes are avoided, with the same
outputs:

* merlin runs a node once per downstream *path* (a node feeding three others runs three times per partition,
  its whole upstream graph with it); here each node runs once per ``transform`` call and every consumer gets
  a shallow copy of its output (setting a column on the copy leaves the cached frame as it was);
* merlin merges a node's inputs pairwise, deep-copying every column accumulated so far at each step
  (``reset_index`` and ``pd.concat``); here pandas inputs are joined once, their blocks side by side without
  a copy (a column given by several inputs is taken from the last, as merlin does);
* a selection node (``+``, ``[...]``, an input selection) copies its input with ``df[names]`` even when it
  selects every column in order, and so does the final selection of the output columns; here a selection of
  adjacent columns, in order, returns a view of them (its input itself when it selects them all);
* while fitting, every node's output schema is rebuilt from the data, column by column and partition by
  partition (two dataclass copies each); here a numpy column whose schema came out unchanged once keeps it.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import nvtabular as nvt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from merlin.core.dispatch import concat_columns, is_list_dtype, list_val_dtype
from merlin.dag.executors import LocalExecutor
from merlin.dag.ops.concat_columns import ConcatColumns
from merlin.dag.ops.selection import SelectionOp
from merlin.dag.ops.subset_columns import SubsetColumns
from merlin.dtypes.shape import DefaultShapes
from pandas._libs.internals import BlockPlacement
from pandas.core.internals import BlockManager

#: Operators whose transform only selects columns (``df[names]``, a copy in pandas).
_SELECTIONS = (ConcatColumns, SelectionOp, SubsetColumns)


#: Per thread, the node outputs of the ``transform`` call in progress (a stack: calls may nest).
_outputs = threading.local()


class ListSafeExecutor(LocalExecutor):
    """``LocalExecutor`` whose dtype capture skips list columns without any leaf, which runs each node once per
    ``transform`` call and merges pandas inputs without copying them."""

    def transform(self, transformable: Any, graph: Any, *args: Any, **kwargs: Any) -> Any:
        stack = getattr(_outputs, "stack", None)
        if stack is None:
            stack = _outputs.stack = []
        stack.append({})
        try:
            return super().transform(transformable, graph, *args, **kwargs)
        finally:
            stack.pop()

    def _execute_node(self, node: Any, transformable: Any, capture_dtypes: bool = False, strict: bool = False) -> Any:
        stack = getattr(_outputs, "stack", None)
        if not stack:
            return super()._execute_node(node, transformable, capture_dtypes, strict)
        outputs = stack[-1]
        key = (id(node), id(transformable))
        if key not in outputs:
            outputs[key] = (node, transformable, super()._execute_node(node, transformable, capture_dtypes, strict))
        return _shallow_copy(outputs[key][2])

    def _merge_upstream_columns(self, upstream_outputs: list[Any], merge_fn: Any = concat_columns) -> Any:
        frames = upstream_outputs
        if len(frames) < 2 or not all(
            isinstance(f, pd.DataFrame) and len(f) == len(frames[0]) > 0 and f.columns.is_unique for f in frames
        ):
            return super()._merge_upstream_columns(upstream_outputs, merge_fn)
        last = {name: i for i, frame in enumerate(frames) for name in frame.columns}  # later inputs win
        pieces = []
        for i, frame in enumerate(frames):
            own = [name for name in frame.columns if last[name] == i]
            if own:
                piece = frame if len(own) == len(frame.columns) else frame[own]
                pieces.append(_default_index(piece))
        return pieces[0] if len(pieces) == 1 else _join_columns(pieces)

    def _run_node_transform(self, node: Any, input_data: Any, capture_dtypes: bool = False, strict: bool = False) -> Any:
        selected = None
        if isinstance(node.op, _SELECTIONS) and isinstance(input_data, pd.DataFrame):
            selected = _adjacent_columns(input_data, node.input_columns.resolve(node.input_schema).names)
        if selected is None:
            return super()._run_node_transform(node, input_data, capture_dtypes, strict)
        # merlin's _run_node_transform with the selection's df[names] (a copy) replaced by a view of the columns
        if capture_dtypes:
            self._capture_dtypes(node, selected)
        elif strict and len(selected):
            self._validate_dtypes(node, selected)
        return selected

    def _combine_node_outputs(self, node: Any, transformed: Any, output: Any) -> Any:
        if output is None and _selects_all(transformed, node.output_schema):
            return transformed  # merlin: transformed[output columns], a copy of the same columns
        return super()._combine_node_outputs(node, transformed, output)

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
        if not (isinstance(column.dtype, np.dtype) and column.dtype.kind in "biufcmM"):
            return super()._build_schema_from_data(output_data, col_name, output_col_schema)
        # A plain numpy column: merlin's answer depends on the schema and the dtype only, and once the schema is
        # a fixed point (every partition after the first) it is that same schema: remembered, not rebuilt.
        fixed = self.__dict__.setdefault("_fixed_schemas", {})
        key = (id(output_col_schema), column.dtype)
        if fixed.get(key) is output_col_schema:
            return output_col_schema
        built = super()._build_schema_from_data(output_data, col_name, output_col_schema)
        if built == output_col_schema:
            fixed[key] = output_col_schema  # holding it keeps its id from being reused
            return output_col_schema
        return built

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_fixed_schemas", None)  # a cache of this process
        return state


def _shallow_copy(data: Any) -> Any:
    """A new frame over the same column arrays (pandas), so that a consumer's ``df[name] = ...`` leaves ``data``
    as it was; other data as it is."""
    return data.copy(deep=False) if isinstance(data, pd.DataFrame) else data


def _adjacent_columns(frame: pd.DataFrame, names: list[str]) -> pd.DataFrame | None:
    """``frame[names]`` without a copy (``frame`` itself, or an ``iloc`` slice sharing its blocks) when ``names``
    are adjacent columns of ``frame`` in order; None otherwise."""
    if not names or not frame.columns.is_unique:
        return None
    if list(frame.columns) == list(names):
        return frame
    positions = frame.columns.get_indexer(names)
    start = int(positions[0])
    if start < 0 or not np.array_equal(positions, np.arange(start, start + len(names))):
        return None
    return frame.iloc[:, start : start + len(names)]


def _selects_all(data: Any, selector: Any) -> bool:
    """True when ``data`` is a pandas frame whose columns are exactly ``selector``'s names, in order."""
    if not isinstance(data, pd.DataFrame):
        return False
    names = selector.column_names if hasattr(selector, "column_names") else selector.names
    return list(data.columns) == list(names)


def _join_columns(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The columns of ``frames`` (same index) side by side, sharing their arrays: no copy.

    ``pd.concat(axis=1)`` copies every column (``copy=True``) or consolidates each dtype into one new 2-D block
    (``copy=False``), tens of milliseconds for a ranking partition; here each input block becomes a block of the
    result as it is (pandas 1.5 internals: ``Block.make_block_same_class``, ``BlockManager``)."""
    blocks, offset = [], 0
    for frame in frames:
        for block in frame._mgr.blocks:
            placement = BlockPlacement(block.mgr_locs.as_array + offset)
            blocks.append(block.make_block_same_class(block.values, placement=placement))
        offset += frame.shape[1]
    columns = frames[0].columns.append([frame.columns for frame in frames[1:]])
    return pd.DataFrame(BlockManager(tuple(blocks), [columns, frames[0].index], verify_integrity=False))


def _default_index(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with the index 0..n-1 (merlin resets every input's index before joining), without a copy."""
    index = frame.index
    if isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1:
        return frame
    return frame.set_axis(pd.RangeIndex(len(frame)), axis=0, copy=False)


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
