"""Workaround: the merlin loader cannot batch a list column that is empty in every row of a batch.

Applies to merlin-dataloader 23.08 (``KeyError: 0`` in ``LoaderBase._convert_df_to_tensors``);
docs/STACK_NOTES.md, "merlin-dataloader 23.08". Only the ``merlin`` engine needs it: t4r_dmt's default
``dense`` engine batches empty lists. :func:`loader_file` rewrites empty lists as ``[0]`` (the padding code,
which every model masks), so the loader pads ``[]`` and ``[0]`` to the same dense tensor.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from merlin.schema import Schema

__all__ = ["loader_file", "pad_empty_lists"]


def pad_empty_lists(array: pa.Array | pa.ChunkedArray) -> pa.Array:
    """A list array with every empty (or null) list replaced by ``[0]``; other rows unchanged.

    ``array``: (N,) lists of integer codes. Returns (N,) lists of the same type, each of length >= 1.
    """
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    lengths = pc.fill_null(pc.list_value_length(array), 0).to_numpy(zero_copy_only=False).astype(np.int64)
    values = pc.list_flatten(array)  # the values of the non-null rows, in row order
    value_type = pa.int64() if pa.types.is_null(values.type) else values.type  # all empty when written by pandas
    flat = values.to_numpy(zero_copy_only=False).astype(value_type.to_pandas_dtype(), copy=False)
    empty = np.flatnonzero(lengths == 0)
    starts = np.cumsum(lengths) - lengths
    flat = np.insert(flat, starts[empty], 0)  # several empty rows at one start: one 0 each, in row order
    offsets = np.concatenate([[0], np.cumsum(np.maximum(lengths, 1))])
    offset_type = pa.int64() if pa.types.is_large_list(array.type) else pa.int32()
    cls = pa.LargeListArray if pa.types.is_large_list(array.type) else pa.ListArray
    return cls.from_arrays(pa.array(offsets, offset_type), pa.array(flat, type=value_type))


def loader_file(path: Path, schema: Schema, out_dir: Path) -> Path:
    """``path`` itself if no list column of ``schema`` has an empty row in it, else a copy in ``out_dir``
    (named after the window folder and the file; overwritten) whose empty lists read ``[0]``.

    The merlin loader cannot batch a list column that is empty in every row of a batch (module docstring);
    ``[0]`` is the padding code, so the models see the same tensors.
    """
    lists = [c.name for c in schema if c.is_list]
    available = set(pq.ParquetFile(path).schema_arrow.names)
    lists = [c for c in lists if c in available]
    if not lists:
        return path
    columns = pq.read_table(path, columns=lists)
    needs = [c for c in lists if len(columns[c]) and pc.min(pc.fill_null(pc.list_value_length(columns[c]), 0))
             .as_py() == 0]
    if not needs:
        return path
    table = pq.read_table(path)
    for name in needs:
        table = table.set_column(table.schema.get_field_index(name), name, pad_empty_lists(table[name]))
    out = out_dir / f"{path.parent.name}_{path.name}"
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, out)
    return out
