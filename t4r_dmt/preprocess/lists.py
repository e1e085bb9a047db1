"""Frame helpers shared by the ranking operators: pandas by default, cuDF when the frame is one.

Variable-length list columns are handled as a pair ``(values, offsets)``: row ``i`` holds
``values[offsets[i]:offsets[i + 1]]``. Building a column from that pair is one vectorised call on both
back ends (``np.split`` for pandas, an Arrow ``ListArray`` for cuDF), so no operator loops per row.
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
    rows = series.to_numpy() if hasattr(series, "to_numpy") else np.asarray(series, dtype=object)
    try:
        # Arrow walks the object array in C++ (~2x faster than len() + np.concatenate per row).
        arrow = pa.array(rows)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # rows of mixed element types: numpy decides
        arrow = None
    if isinstance(arrow, pa.ListArray) and arrow.null_count == 0 and not pa.types.is_null(arrow.type.value_type):
        offsets = arrow.offsets.to_numpy().astype(np.int64)
        return arrow.flatten().to_numpy(zero_copy_only=False), offsets - offsets[0]
    lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
    offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    if offsets[-1] == 0:
        first = rows[0] if len(rows) else None
        return np.zeros(0, dtype=first.dtype if isinstance(first, np.ndarray) else np.int64), offsets
    return np.concatenate(list(rows)), offsets


def flat_to_list(values: np.ndarray, offsets: np.ndarray, like: Any = None) -> Any:
    """Build a list column (pandas object series of arrays, or cuDF list series) from leaves."""
    n_rows = len(offsets) - 1
    if like is not None and is_cudf(like):
        arrow = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(values))
        return cudf.Series.from_arrow(arrow)
    if values.dtype != object:
        # Arrow cuts the rows in C++ (~2x faster than Python slicing); each row is a read-only view.
        arrow = pa.LargeListArray.from_arrays(pa.array(offsets, pa.int64()), pa.array(values))
        return pd.Series(arrow.to_numpy(zero_copy_only=False), dtype=object)
    # Plain slicing is ~7x faster than np.split (which swaps axes per piece); np.fromiter keeps one
    # array per row even when all rows have the same length (slice assignment into an object array
    # would try to broadcast them into a 2-D block).
    starts, ends = offsets[:-1].tolist(), offsets[1:].tolist()
    pieces = map(values.__getitem__, map(slice, starts, ends))
    return pd.Series(np.fromiter(pieces, dtype=object, count=n_rows), dtype=object)


def new_frame(columns: dict[str, Any], like: Any = None) -> Any:
    """A frame of the same kind as ``like`` (pandas or cuDF) holding ``columns`` in order."""
    if like is not None and is_cudf(like):
        out = cudf.DataFrame()
        for name, column in columns.items():
            out[name] = column if is_cudf(column) else cudf.Series(column)
        return out
    return pd.DataFrame({name: _as_pandas(column) for name, column in columns.items()})


def _as_pandas(column: Any) -> Any:
    if isinstance(column, pd.Series):
        return column.reset_index(drop=True)
    return column
