"""Frame helpers shared by the ranking operators: pandas by default, cuDF when the frame is one.

Variable-length list columns are handled as a pair ``(values, offsets)``: row ``i`` holds
``values[offsets[i]:offsets[i + 1]]``. Building a column from that pair is one vectorised call on both
back ends, so no operator loops per row: an Arrow ``ListArray`` wrapped as a cuDF list series, or as a
pandas series of ``pd.ArrowDtype`` (``list<item: int64>[pyarrow]``).

Why Arrow-backed pandas columns and not object columns of numpy arrays: an object column holds one
Python array object per row, so every hop of a partition through the workflow (building the lists,
flattening them again to encode them, merlin.dag's column selections that consolidate object blocks,
the conversion to Arrow for the parquet writer) walked every row in Python or C++. An Arrow list column
is two buffers: flattening, rebuilding and handing it to the writer are O(1), and pandas never
consolidates or copies it. Reading a row (``series.iloc[i]``, ``series.tolist()``) gives Python lists.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

try:  # pragma: no cover - cuDF is only present on GPU machines
    import cudf
except ImportError:  # pragma: no cover
    cudf = None


def is_cudf(obj: Any) -> bool:
    """True when ``obj`` is a cuDF frame or series."""
    return cudf is not None and type(obj).__module__.split(".")[0] == "cudf"


def to_numpy(series: Any) -> np.ndarray:
    """Host numpy array of a pandas or cuDF series (datetimes as int64 nanoseconds)."""
    if is_cudf(series):
        series = series.to_pandas()
    values = series.to_numpy() if hasattr(series, "to_numpy") else np.asarray(series)
    if np.issubdtype(values.dtype, np.datetime64):
        values = values.astype("datetime64[ns]").view(np.int64)
    return values


def list_to_flat(series: Any) -> tuple[np.ndarray, np.ndarray]:
    """Split a list column into its leaves and offsets.

    Returns
    -------
    values : np.ndarray, shape (L,)
        All leaves, row after row.
    offsets : np.ndarray[int64], shape (N + 1,)
        Row ``i`` holds ``values[offsets[i]:offsets[i + 1]]``.
    """
    if is_cudf(series):
        column = series._column
        offsets = column.offsets.values_host.astype(np.int64)
        values = series.list.leaves.to_pandas().to_numpy()
        return values, offsets - offsets[0]
    arrow = arrow_list(series)
    if arrow is None:
        rows = series.to_numpy() if hasattr(series, "to_numpy") else np.asarray(series, dtype=object)
        try:
            # Arrow walks the object array in C++ (~2x faster than len() + np.concatenate per row).
            arrow = pa.array(rows)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # rows of mixed element types: numpy decides
            return _object_rows_to_flat(rows)
        if not _is_plain_list(arrow):
            return _object_rows_to_flat(rows)
    leaves, offsets = arrow_flat(arrow)
    return leaves.to_numpy(zero_copy_only=False), offsets


def arrow_flat(arrow: pa.ListArray | pa.LargeListArray) -> tuple[pa.Array, np.ndarray]:
    """Leaves (L,) and int64 offsets (N + 1,) of an Arrow list array, as ``list_to_flat`` returns them but with
    the leaves left in Arrow (a sliced array's offsets are rebased to start at 0)."""
    offsets = arrow.offsets.to_numpy().astype(np.int64)
    return arrow.flatten(), offsets - offsets[0]


def arrow_list(series: Any) -> pa.ListArray | pa.LargeListArray | None:
    """The Arrow array behind a pandas list column of ``pd.ArrowDtype`` (one chunk, no null rows);
    None for any other column."""
    dtype = getattr(series, "dtype", None)
    if not isinstance(dtype, pd.ArrowDtype) or not _is_list_type(dtype.pyarrow_dtype):
        return None
    chunked = series.array.__arrow_array__()
    arrow = chunked.combine_chunks() if chunked.num_chunks != 1 else chunked.chunk(0)
    return arrow if _is_plain_list(arrow) else None


def _is_list_type(arrow_type: pa.DataType) -> bool:
    return bool(pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type))


def _is_plain_list(arrow: Any) -> bool:
    return (
        isinstance(arrow, (pa.ListArray, pa.LargeListArray))
        and arrow.null_count == 0
        and not pa.types.is_null(arrow.type.value_type)
    )


def _object_rows_to_flat(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
    offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    if offsets[-1] == 0:
        first = rows[0] if len(rows) else None
        return np.zeros(0, dtype=first.dtype if isinstance(first, np.ndarray) else np.int64), offsets
    return np.concatenate(list(rows)), offsets


def flat_to_list(values: np.ndarray | pa.Array, offsets: np.ndarray, like: Any = None) -> Any:
    """Build a list column from leaves (numpy or Arrow): a cuDF list series when ``like`` is cuDF,
    otherwise a pandas series of ``pd.ArrowDtype`` (list of int64, float64, string ... leaves; see
    the module docstring).

    Leaves that Arrow cannot type (Python objects of mixed kinds) give an object series of numpy
    arrays instead, as before.
    """
    n_rows = len(offsets) - 1
    if like is not None and is_cudf(like):
        leaves = values if isinstance(values, pa.Array) else pa.array(values)
        arrow = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), leaves)
        return cudf.Series.from_arrow(arrow)
    leaves = values if isinstance(values, pa.Array) else arrow_leaves(values)
    if leaves is not None:
        offsets = np.asarray(offsets, dtype=np.int64)
        if len(offsets) and offsets[-1] < 2**31:
            arrow = pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), leaves)
        else:
            arrow = pa.LargeListArray.from_arrays(pa.array(offsets), leaves)
        return pd.Series(pd.arrays.ArrowExtensionArray(arrow))
    # Plain slicing is ~7x faster than np.split (which swaps axes per piece); np.fromiter keeps one
    # array per row even when all rows have the same length (slice assignment into an object array
    # would try to broadcast them into a 2-D block).
    starts, ends = offsets[:-1].tolist(), offsets[1:].tolist()
    pieces = map(values.__getitem__, map(slice, starts, ends))
    return pd.Series(np.fromiter(pieces, dtype=object, count=n_rows), dtype=object)


def arrow_leaves(values: np.ndarray) -> pa.Array | None:
    """Leaves as an Arrow array, or None where Arrow would change them: object leaves are kept only
    when they are all strings or None (Arrow would turn ints with None into floats with NaN)."""
    if values.dtype != object:
        return pa.array(values)
    try:
        leaves = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    if pa.types.is_null(leaves.type):  # no leaf, or only None
        return pa.array(values, type=pa.string())
    return leaves if pa.types.is_string(leaves.type) or pa.types.is_large_string(leaves.type) else None


def new_frame(columns: dict[str, Any], like: Any = None) -> Any:
    """A frame of the same kind as ``like`` (pandas or cuDF) holding ``columns`` in order."""
    if like is not None and is_cudf(like):
        out = cudf.DataFrame()
        for name, column in columns.items():
            out[name] = column if is_cudf(column) else cudf.Series(column)
        return out
    return pd.DataFrame({name: _as_pandas(column) for name, column in columns.items()})


def block_frame(block: np.ndarray, names: list[str], like: Any = None) -> Any:
    """A frame of the same kind as ``like`` whose columns are the rows of ``block`` (C, N), named ``names``.

    On pandas the C-ordered block becomes the frame's one block as it is (no copy, nothing to consolidate
    later); ``new_frame`` of C separate arrays would copy them into one."""
    if like is not None and is_cudf(like):
        return new_frame(dict(zip(names, block, strict=True)), like=like)
    return pd.DataFrame(block.T, columns=names)


def block_rows(frame: pd.DataFrame, names: list[str]) -> np.ndarray | None:
    """The columns ``names`` of a pandas frame as a (len(names), rows) view of the 2-D block holding them, when
    one block holds them all, adjacent and in order; None otherwise (``frame[names]`` would copy them either
    way, and so does ``iloc`` on a frame of several blocks). Read only: the view shares ``frame``'s data."""
    positions = frame.columns.get_indexer(names)
    if not len(positions) or (positions < 0).any():
        return None
    manager = frame._mgr  # pandas internals (1.5): which block holds each column, and where in it
    blocks, places = manager.blknos[positions], manager.blklocs[positions]
    values = manager.blocks[blocks[0]].values
    if (blocks != blocks[0]).any() or not isinstance(values, np.ndarray) or values.ndim != 2:
        return None
    first = int(places[0])
    if not np.array_equal(places, np.arange(first, first + len(names))):
        return None
    return values[first : first + len(names)]


def _as_pandas(column: Any) -> Any:
    if isinstance(column, pd.Series):
        return column.reset_index(drop=True)
    return column
