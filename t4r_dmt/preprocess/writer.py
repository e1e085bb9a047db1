"""Writing one window of transformed ranking rows: ``train.parquet``, ``valid.parquet``, ``test.parquet``.

``train`` holds every row of the window; ``valid`` and ``test`` split the window's requests 50:50 by a
deterministic hash of ``request_id`` (a whole request goes to one side), so valid ∪ test = train.
Partitions are computed a few at a time (on the Dask cluster when one is active) and appended in
partition order, so memory stays bounded and the files do not depend on the number of workers.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import dask
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from merlin.core.utils import global_dask_client
from merlin.schema import Schema

from t4r_dmt.preprocess.lists import is_cudf

SPLITS = ("train", "valid", "test")


def is_valid_request(request_id: np.ndarray) -> np.ndarray:
    """True for requests of the validation half, False for the test half (stable across runs)."""
    hashed = pd.util.hash_array(np.asarray(request_id, dtype=np.int64), categorize=False)
    return (hashed % np.uint64(2)) == 0


def arrow_schema(schema: Schema, columns: list[str]) -> pa.Schema:
    """Parquet schema of the output: int64 lists, float32 dense features, int64 everything else."""
    fields = []
    for name in columns:
        column = schema[name]
        value_type = pa.from_numpy_dtype(np.dtype(column.dtype.to_numpy))
        fields.append(pa.field(name, pa.list_(value_type) if column.is_list else value_type))
    return pa.schema(fields)


def write_window(
    ddf: Any,
    folder: Path,
    schema: pa.Schema,
    batch_size: int = 2,
    on_partition: Callable[[], None] | None = None,
) -> dict[str, int]:
    """Compute ``ddf`` partition by partition and write the three split files; return their row counts."""
    folder.mkdir(parents=True, exist_ok=True)
    writers = {split: pq.ParquetWriter(folder / f"{split}.parquet", schema) for split in SPLITS}
    rows = dict.fromkeys(SPLITS, 0)
    try:
        # Each partition becomes an Arrow table where it is computed (on a Dask worker, if any):
        # tables travel back as a few buffers, not as millions of per-row numpy arrays.
        parts = [dask.delayed(_to_arrow)(part, schema) for part in ddf.to_delayed()]
        client = global_dask_client()
        for start in range(0, len(parts), batch_size):
            batch = parts[start : start + batch_size]
            if client is not None:
                tables = [future.result() for future in client.compute(batch)]
            else:
                tables = list(dask.compute(*batch, scheduler="synchronous"))
            for table in tables:
                valid = pa.array(is_valid_request(table.column("request_id").to_numpy()))
                halves = {"train": table, "valid": table.filter(valid), "test": table.filter(pc.invert(valid))}
                for split, part in halves.items():
                    if part.num_rows:
                        writers[split].write_table(part)
                    rows[split] += part.num_rows
                if on_partition is not None:
                    on_partition()
    finally:
        for writer in writers.values():
            writer.close()
    return rows


def _to_arrow(frame: Any, schema: pa.Schema) -> pa.Table:
    frame = frame[schema.names]
    if is_cudf(frame):
        return frame.to_arrow(preserve_index=False).cast(schema)
    return pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
