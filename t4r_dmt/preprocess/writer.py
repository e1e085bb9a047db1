"""Writing transformed ranking rows per window: ``train.parquet``, ``valid.parquet``, ``test.parquet``.

``train`` holds every row of the window; ``valid`` and ``test`` split the window's requests 50:50 by a
deterministic hash of ``request_id`` (a whole request goes to one side), so valid ∪ test = train.
Partitions are computed a few at a time (on the Dask cluster when one is active) and appended in
partition order, so memory stays bounded and the files do not depend on the number of workers.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import dask
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from merlin.core.utils import global_dask_client
from merlin.schema import Schema

from t4r_dmt.compat.merlin_schema import is_text_column
from t4r_dmt.preprocess.lists import is_cudf
from t4r_dmt.schema import BEHAVIORS, sequence_column
from t4r_dmt.windows import SPLITS, valid_half, window_dir


def arrow_schema(schema: Schema, columns: list[str], types: Mapping[str, pa.DataType] | None = None) -> pa.Schema:
    """Parquet schema of the output: int64 lists, float32 dense features, int64 everything else but text
    (the raw ``request_id`` of a log with text ids: string). ``types`` gives some columns' types instead."""
    fields = []
    for name in columns:
        if types is not None and name in types:
            fields.append(pa.field(name, types[name]))
            continue
        column = schema[name]
        if is_text_column(column.dtype):
            value_type = pa.string()
        else:
            value_type = pa.from_numpy_dtype(np.dtype(column.dtype.to_numpy))
        fields.append(pa.field(name, pa.list_(value_type) if column.is_list else value_type))
    return pa.schema(fields)


def dictionary_columns(schema: pa.Schema) -> list[str]:
    """The parquet column paths written with dictionary encoding: all but the floats and the item-id sequences.

    Ids, labels and lists of category, brand or time-gap codes repeat few values: the dictionary makes them
    several times smaller. The ~100 normalised dense features are floats, whose dictionaries cost a third of
    the writing time (for a float part about half the size); the item-id sequences have as many distinct
    values as the catalogue, and snappy alone brings them within ~15 % of the dictionary's size, in 60 % of its
    time. A list column's values are the leaf ``name.list.element`` (pyarrow's default compliant nested type).
    """
    item_sequences = {sequence_column(b, "item") for b in BEHAVIORS}
    return [path for path in statistics_columns(schema) if path.split(".")[0] not in item_sequences]


def statistics_columns(schema: pa.Schema) -> list[str]:
    """The parquet column paths written with min / max statistics: all but the floats.

    Ids, labels and sequences keep them (a reader may filter or skip row groups on them); nothing filters on
    the normalised dense features, whose statistics cost ~4 % of the writing time.
    """
    return [f"{f.name}.list.element" if pa.types.is_list(f.type) else f.name
            for f in schema if not pa.types.is_floating(f.type)]


def write_windows(
    ddf: Any,
    windows: list[int],
    root: Path,
    schema: pa.Schema,
    in_flight: int = 0,
    on_partition: Callable[[], None] | None = None,
) -> dict[str, dict[str, int]]:
    """Compute ``ddf`` partition by partition and append each to its window's three split files.

    Parameters
    ----------
    ddf : dask DataFrame
        Transformed ranking rows; partition ``i`` belongs to window ``windows[i]``.
    root : Path
        ``DIR/ranking``; window w is written to ``root/000w/{train,valid,test}.parquet``.
    in_flight : int
        With a Dask cluster, partitions computed ahead of the one being written (workers stay busy,
        memory stays bounded). Tables are appended in partition order either way.

    Returns
    -------
    dict
        Rows per window and split: ``{"1": {"train": n, "valid": n, "test": n}, ...}``.
    """
    writers: dict[int, dict[str, pq.ParquetWriter]] = {}
    rows: dict[str, dict[str, int]] = {}
    try:
        for w in sorted(set(windows)):
            folder = window_dir(root, w)
            folder.mkdir(parents=True, exist_ok=True)
            writers[w] = {
                split: pq.ParquetWriter(folder / f"{split}.parquet", schema, use_dictionary=dictionary_columns(schema),
                                        write_statistics=statistics_columns(schema))
                for split in SPLITS
            }
            rows[str(w)] = dict.fromkeys(SPLITS, 0)
        for w, table in zip(windows, _tables(ddf, schema, in_flight), strict=True):
            valid = pa.array(valid_half(table.column("request_id").to_numpy()))  # int64 or str ids
            halves = {"train": table, "valid": table.filter(valid), "test": table.filter(pc.invert(valid))}
            for split, part in halves.items():
                if part.num_rows:
                    writers[w][split].write_table(part)
                rows[str(w)][split] += part.num_rows
            if on_partition is not None:
                on_partition()
    finally:
        for split_writers in writers.values():
            for writer in split_writers.values():
                writer.close()
    return rows


def _tables(ddf: Any, schema: pa.Schema, in_flight: int) -> Iterator[pa.Table]:
    """The partitions of ``ddf`` as Arrow tables, in order."""
    # Each partition becomes an Arrow table where it is computed (on a Dask worker, if any):
    # tables travel back as a few buffers, not as millions of per-row numpy arrays.
    parts = [dask.delayed(_to_arrow)(part, schema) for part in ddf.to_delayed()]
    client = global_dask_client()
    if client is None:
        for part in parts:
            yield dask.compute(part, scheduler="synchronous")[0]
        return
    pending: deque[Any] = deque()
    for part in parts:
        pending.append(client.compute(part))
        if len(pending) > in_flight:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def _to_arrow(frame: Any, schema: pa.Schema) -> pa.Table:
    if is_cudf(frame):
        return frame[schema.names].to_arrow(preserve_index=False).cast(schema)
    # The schema selects and orders the columns (a frame[names] first would copy them all)
    return pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
