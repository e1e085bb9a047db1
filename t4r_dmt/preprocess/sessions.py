"""Session-based next-item data for Transformers4Rec: the ``DIR/sessions/`` part of ``t4r-dmt preprocess``.

It follows T4R's own session ETL (the "end-to-end-session-based" example and
``transformers4rec.data.preprocessing``): consecutive repeats of an item removed, NVTabular
Categorify, ``Groupby`` on ``user_session`` sorted by time into list columns, sessions shorter than
``min_length`` dropped, the first ``max_length`` interactions kept (T4R's ``ListSlice(0, 20)``: the
start of a long session, not its end), and time-based splits with one folder per window.

Output layout (``out_dir`` is a temporary folder that the caller renames)::

    out_dir/workflow/             fitted nvt.Workflow; workflow/categories/unique.<col>.parquet decode
                                  the codes (the parquet index is the code)
    out_dir/schema.pbtxt          Merlin schema with T4R tags
    out_dir/0001/train.parquet    every session whose first event falls in window 1
    out_dir/0001/valid.parquet    half of them, by a hash of session_id and split_seed
    out_dir/0001/test.parquet     the other half: valid and test are disjoint, valid + test = train
    out_dir/0002/...              one folder per non-empty window, 1-based, 4 digits

Protocol (the T4R paper's): train on ``t/train.parquet``, evaluate on ``(t+1)/valid.parquet``, report
on ``(t+1)/test.parquet``.

Columns, one row per session (names as in T4R's examples):

======================  ===============  =============================  ===============================
column                  type             tags                           meaning
======================  ===============  =============================  ===============================
session_id              int64            (none)                         63-bit hash of ``user_session``
window                  int64            (none)                         1-based window (T4R: day_index)
timestamp-first         int64            (none)                         session start, Unix seconds
item_id-count           int32            (none)                         interactions after repeat
                                                                        removal, before truncation
item_id-list            list<int64>      ITEM_ID, ITEM, ID,             Categorify codes of product_id
                                         CATEGORICAL, LIST
category-list           list<int64>      ITEM, CATEGORICAL, LIST        category_id codes (-1 -> null 1)
brand-list              list<int64>      ITEM, CATEGORICAL, LIST        brand codes (None -> null 1)
event_type-list         list<int64>      CATEGORICAL, LIST              view 3, cart 4, purchase 5,
                                                                        remove_from_cart 6
et_hour_sin-list        list<float32>    CONTINUOUS, LIST               time of day, cyclical (UTC)
et_hour_cos-list        list<float32>    CONTINUOUS, LIST
et_dayofweek_sin-list   list<float32>    CONTINUOUS, LIST               time of week, Monday 0 (UTC)
et_dayofweek_cos-list   list<float32>    CONTINUOUS, LIST
time_gap_log_norm-list  list<float32>    CONTINUOUS, LIST               seconds since the previous
                                                                        interaction (0 first), log1p,
                                                                        standardised
======================  ===============  =============================  ===============================

Codes follow NVTabular: 0 padding, 1 null, 2 out-of-vocabulary (items below ``freq_threshold``), 3+
values. Lists are not padded (STACK.md: ``ListSlice(pad=True)`` is broken on CPU); the T4R loader pads
them to ``max_sequence_length``; their ``value_count.max`` is ``max_length``. A run of consecutive
events on the same item collapses into one interaction carrying the strongest behaviour of the run
(see :mod:`t4r_dmt.preprocess.session_events`).

Windows: ``window`` is a fixed-length pandas offset alias; window 1 holds the earliest event of the
input, windows are aligned to multiples of their length since the Unix epoch (midnight UTC for
"1d"), and a session belongs to the window of its first event, even when it runs past the boundary.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
import math
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from merlin.core.utils import global_dask_client, set_dask_client
from merlin.schema import Schema
from merlin.schema.io.tensorflow_metadata import TensorflowMetadata
from tqdm import tqdm

from t4r_dmt.errors import InputError
from t4r_dmt.io_utils import atomic_dir, atomic_path
from t4r_dmt.preprocess.session_events import EVENTS_SOURCE, PreparedEvents, prepare_events
from t4r_dmt.preprocess.session_workflow import (
    CATEGORICAL_LISTS,
    CONTINUOUS_LISTS,
    SCALARS,
    build_session_workflow,
)
from t4r_dmt.windows import MAX_WINDOWS, valid_half, window_delta

logger = logging.getLogger(__name__)

__all__ = ["SessionConfig", "write_sessions", "OUTPUT_COLUMNS"]

#: Output columns, in file order.
OUTPUT_COLUMNS: tuple[str, ...] = SCALARS + CATEGORICAL_LISTS + CONTINUOUS_LISTS

_ROWS_PER_PARTITION = 250_000


@dataclass
class SessionConfig:
    """Settings of the session ETL (validated on construction)."""

    window: str = field(default="1d", metadata={
        "help": "Fixed-length pandas offset alias of a time window ('1d', '6h'); windows are "
                "numbered 1..W from the earliest event, a session goes to the window of its start."})
    max_length: int = field(default=20, metadata={
        "help": "Keep the first max_length interactions of a session (T4R paper: 20)."})
    min_length: int = field(default=2, metadata={
        "help": "Drop sessions with fewer interactions (after repeat removal); at least 2."})
    freq_threshold: int = field(default=0, metadata={
        "help": "Items seen fewer times than this are encoded as out-of-vocabulary (code 2)."})
    split_seed: int = field(default=0, metadata={
        "help": "Seed of the session-id hash that splits each window 50:50 into valid and test."})

    def __post_init__(self) -> None:
        window_delta(self.window)  # raises ValueError naming the bad alias
        if self.min_length < 2:
            raise ValueError(f"min_length must be >= 2 (a session needs a next item), got {self.min_length}")
        if self.max_length < self.min_length:
            raise ValueError(f"max_length ({self.max_length}) must be >= min_length ({self.min_length})")
        if self.freq_threshold < 0:
            raise ValueError(f"freq_threshold must be >= 0, got {self.freq_threshold}")
        if self.split_seed < 0:
            raise ValueError(f"split_seed must be >= 0, got {self.split_seed}")


def write_sessions(
    events: pd.DataFrame,
    out_dir: Path,
    window: str | None = None,
    client: Any = None,
    config: SessionConfig | None = None,
) -> dict[str, Any]:
    """Run the session ETL on ``events`` and write ``out_dir`` (layout in the module docstring).

    Parameters
    ----------
    events:
        The canonical events DataFrame (``event_time``, ``event_type``, ``product_id``,
        ``category_id``, ``brand``, ``user_session`` are read), rows in any order.
    out_dir:
        A new or empty folder.
    window:
        Overrides ``config.window`` when given; the two must agree if both are given explicitly.
    client:
        A ``distributed.Client`` to run the NVTabular workflow on; None runs in-process.
    config:
        Defaults to ``SessionConfig()``.

    Returns
    -------
    Statistics: ``rows_per_window`` (``{"0001": {"train": n, "valid": n, "test": n}}``), ``dropped``
    (count per reason), session and event counts, ``empty_windows``.
    """
    config = _resolve_config(window, config)
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f"session output folder {out_dir} is not empty")
    prepared = prepare_events(events, config.window)
    if not (prepared.session_lengths >= config.min_length).any():
        raise InputError(EVENTS_SOURCE, f"no session has at least min_length={config.min_length} "
                         "interactions after removing consecutive repeats", column="user_session")
    n_windows = int(prepared.session_windows.max())
    if n_windows > MAX_WINDOWS:
        raise ValueError(f"window {config.window!r} gives {n_windows} windows (at most {MAX_WINDOWS}); "
                         f"use a longer window")
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".categories.", dir=out_dir) as scratch:
        workflow = build_session_workflow(config.max_length, config.min_length,
                                          config.freq_threshold, categories_dir=scratch)
        with _executor(client):
            dataset = _dataset(prepared.frame, client)
            workflow.fit(dataset)
            sessions = workflow.transform(dataset).to_ddf().compute()
        with atomic_dir(out_dir / "workflow") as tmp:
            workflow.save(tmp)
    schema = _clean_schema(workflow.output_schema.select_by_name(list(OUTPUT_COLUMNS)))
    with atomic_path(out_dir / "schema.pbtxt") as tmp:
        TensorflowMetadata.from_merlin_schema(schema).to_proto_text_file(str(tmp.parent), tmp.name)

    _check_sessions(sessions, prepared, config.min_length)
    rows_per_window = _write_windows(sessions, schema, out_dir, config.split_seed)
    stats = _stats(prepared, config)
    stats["rows_per_window"] = rows_per_window
    stats["empty_windows"] = [w for w in range(1, n_windows + 1) if f"{w:04d}" not in rows_per_window]
    if stats["empty_windows"]:
        logger.warning("sessions: windows without any session (no folder written): %s",
                       stats["empty_windows"])
    logger.info("sessions: %d sessions kept of %d in %d windows", stats["sessions_kept"],
                stats["sessions"], len(rows_per_window))
    return stats


def _resolve_config(window: str | None, config: SessionConfig | None) -> SessionConfig:
    if config is None:
        return SessionConfig() if window is None else SessionConfig(window=window)
    if window is not None and window != config.window:
        raise ValueError(f"window {window!r} disagrees with config.window {config.window!r}")
    return config


@contextlib.contextmanager
def _executor(client: Any) -> Iterator[None]:
    """Run merlin and dask on ``client``, or in-process and single-threaded when it is None.

    merlin's own ``Distributed`` / ``Serial`` context managers leave its global client set to None
    (not "auto") on exit; this one restores what was there.
    """
    previous = global_dask_client()
    set_dask_client(client)  # Workflow.fit computes its statistics on this client (None: synchronous)
    try:
        with dask.config.set(scheduler=client if client is not None else "synchronous"):
            yield
    finally:
        set_dask_client(previous if previous is not None else "auto")


def _dataset(frame: pd.DataFrame, client: Any) -> Any:
    """An NVTabular dataset whose partitions never split a session (Groupby works per partition)."""
    import nvtabular as nvt

    n_workers = len(client.scheduler_info()["workers"]) if client is not None else 1
    n_sessions = int(frame.index.nunique())
    n_parts = min(max(n_workers, math.ceil(len(frame) / _ROWS_PER_PARTITION)), n_sessions)
    # The index is the session ordinal, non-decreasing: from_pandas puts equal index values in one
    # partition. Then each partition gets its own RangeIndex, which the NVTabular ops expect.
    ddf = dd.from_pandas(frame, npartitions=n_parts, sort=True).reset_index(drop=True)
    return nvt.Dataset(ddf, cpu=True)


def _clean_schema(schema: Schema) -> Schema:
    # Categorify records the scratch folder it wrote to; the vocabularies now live in workflow/.
    columns = []
    for col in schema:
        properties = {k: v for k, v in col.properties.items() if k != "cat_path"}
        columns.append(dataclasses.replace(col, properties=properties))
    return Schema(columns)


def _check_sessions(sessions: pd.DataFrame, prepared: PreparedEvents, min_length: int) -> None:
    """The workflow's sessions must be the ones counted in pandas; else a session was split."""
    kept = prepared.session_lengths >= min_length
    expected = np.bincount(prepared.session_windows[kept])
    actual = np.bincount(sessions["window"].to_numpy(np.int64), minlength=len(expected))
    if sessions["session_id"].duplicated().any() or not np.array_equal(actual, expected):
        # Only possible if a session was split across partitions: a bug, never bad input.
        raise RuntimeError(f"the workflow wrote {actual.tolist()} sessions per window, expected "
                           f"{expected.tolist()}: a session was split across partitions")


def _stats(prepared: PreparedEvents, config: SessionConfig) -> dict[str, Any]:
    lengths = prepared.session_lengths
    short = lengths < config.min_length
    kept = lengths[~short]
    return {
        "window": config.window,
        "events": prepared.n_events,
        "interactions": int(lengths.sum()),
        "sessions": len(lengths),
        "sessions_kept": len(kept),
        "sessions_truncated": int((kept > config.max_length).sum()),
        "dropped": {
            "events_consecutive_repeat": prepared.n_repeats_removed,
            "sessions_shorter_than_min_length": int(short.sum()),
            "events_in_sessions_shorter_than_min_length": int(lengths[short].sum()),
            "events_beyond_max_length": int(np.clip(kept - config.max_length, 0, None).sum()),
        },
    }


def _write_windows(
    sessions: pd.DataFrame, schema: Schema, out_dir: Path, seed: int
) -> dict[str, dict[str, int]]:
    """Write ``out_dir/<window>/{train,valid,test}.parquet``; rows per window and split."""
    sessions = sessions.sort_values(["window", "timestamp-first", "session_id"], ignore_index=True)
    window = sessions["window"].to_numpy()
    bounds = np.flatnonzero(np.diff(window)) + 1
    rows: dict[str, dict[str, int]] = {}
    for start, stop in tqdm(list(zip(np.r_[0, bounds], np.r_[bounds, len(window)], strict=True)),
                            desc="writing session windows", disable=None):
        name = f"{int(window[start]):04d}"
        part = sessions.iloc[start:stop]
        train = _to_arrow(part, schema)
        valid = valid_half(part["session_id"].to_numpy(), seed)
        splits = {"train": train, "valid": train.filter(pa.array(valid)),
                  "test": train.filter(pa.array(~valid))}
        for split, data in splits.items():
            with atomic_path(out_dir / name / f"{split}.parquet") as tmp:
                pq.write_table(data, tmp)
        rows[name] = {split: data.num_rows for split, data in splits.items()}
    return rows


def _to_arrow(sessions: pd.DataFrame, schema: Schema) -> pa.Table:
    """Arrow table with the schema's exact types (lists built from flat values, not inferred)."""
    arrays = []
    for col in schema:
        dtype = np.dtype(col.dtype.to_numpy)
        values = sessions[col.name]
        if col.is_list:
            lengths = values.map(len).to_numpy(np.int64)
            offsets = np.zeros(len(lengths) + 1, dtype=np.int32)
            np.cumsum(lengths, out=offsets[1:])
            flat = np.fromiter(itertools.chain.from_iterable(values), dtype=dtype, count=int(offsets[-1]))
            arrays.append(pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat)))
        else:
            arrays.append(pa.array(values.to_numpy(dtype)))
    return pa.Table.from_arrays(arrays, names=[col.name for col in schema])
