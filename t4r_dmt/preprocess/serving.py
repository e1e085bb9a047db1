"""Raw impressions (and events) -> model-ready ranking rows through a *saved* preprocess workflow.

``t4r-dmt preprocess --out DIR`` saves the fitted ``nvt.Workflow`` with its vocabularies, normalisation
moments and the event history it was built from (``DIR/workflow/history``). This module feeds new raw
impression lists through that same workflow, so a model scores them with exactly the features it was
trained on:

* the as-of features (behaviour sequences, candidate attributes, user activity counts) are read from
  the bundled history, or from a fresh history built from ``events`` when given (the users' log up to
  the requests: only events **strictly before** each request time are used, as in training);
* each request gets the window number it falls in on the preprocess run's own window grid (windows
  after the last logged one continue the numbering); item CTR reads the logged impressions at least
  ``rate_delay`` before each request, as in training: rescoring a logged window reproduces its rows exactly;
* positions and pages beyond the largest seen in training are clipped to it (the bias tower only acts
  in training; the schema's domains stay valid).

Labels are not needed: impressions without ``click`` / ``order`` get 0 (they are not model inputs).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import dask.dataframe as dd
import numpy as np
import nvtabular as nvt
import pandas as pd
import pyarrow as pa
from merlin.dag import Graph
from merlin.io import Dataset

from t4r_dmt.compat.merlin_executor import use_list_safe_executor
from t4r_dmt.data.ids import is_text_ids
from t4r_dmt.preprocess.candidates import impression_candidates, write_window
from t4r_dmt.preprocess.history import HistoryStore
from t4r_dmt.preprocess.lists import cudf
from t4r_dmt.preprocess.ops.history_operator import HistoryOperator
from t4r_dmt.preprocess.workflow import output_columns
from t4r_dmt.preprocess.writer import arrow_schema, write_windows
from t4r_dmt.windows import window_numbers


@dataclass(frozen=True)
class SavedPreprocess:
    """What a ``t4r-dmt preprocess`` output folder says about how its ranking rows were made.

    Attributes
    ----------
    root : Path
        The preprocess output folder ``DIR``.
    window : str
        Window length (a fixed pandas frequency, e.g. ``"1d"``).
    first_window_start : pd.Timestamp
        Start of window 1 (UTC, naive).
    with_bias : bool
        Whether the rows carry the position / neighbour features (impression logs only).
    events_per_bucket : int
        History bucket size of the run (reused when a new history is built).
    """

    root: Path
    window: str
    first_window_start: pd.Timestamp
    with_bias: bool
    events_per_bucket: int

    @classmethod
    def load(cls, data_dir: str | Path) -> SavedPreprocess:
        """Read ``DIR/stats.json``; FileNotFoundError if ``DIR`` is not a preprocess output."""
        root = Path(data_dir)
        stats_path = root / "stats.json"
        if not stats_path.exists() or not (root / "workflow").is_dir():
            raise FileNotFoundError(
                f"{root} holds no stats.json and workflow/: is it the --out folder of `t4r-dmt preprocess`?"
            )
        stats = json.loads(stats_path.read_text())
        return cls(
            root=root,
            window=str(stats["window"]),
            first_window_start=pd.Timestamp(stats["window_starts"][0]),
            with_bias=bool(stats["bias_features"]),
            events_per_bucket=int(stats["config"]["events_per_bucket"]),
        )

    def window_numbers(self, times_ns: np.ndarray) -> np.ndarray:
        """Window of each request time on the run's grid, shape (N,): 1-based, continued past the last
        logged window; times before window 1 get 1 (they have no earlier window either)."""
        return np.maximum(window_numbers(times_ns, self.window, self.first_window_start), 1)


def load_workflow(saved: SavedPreprocess) -> nvt.Workflow:
    """The fitted ranking workflow of ``saved`` (its history operators point at the bundled history)."""
    return use_list_safe_executor(nvt.Workflow.load(str(saved.root / "workflow")))


def transform_impressions(
    saved: SavedPreprocess,
    impressions: pd.DataFrame,
    work_dir: str | Path,
    events: pd.DataFrame | None = None,
    items: pd.DataFrame | None = None,
    source: str = "impressions",
) -> Path:
    """Turn canonical impressions into ranking rows with the saved workflow.

    Parameters
    ----------
    saved : SavedPreprocess
        The preprocess run whose workflow to apply.
    impressions : pd.DataFrame, shape (N, >= 6)
        Canonical impressions (``request_id, user_id, event_time, product_id, position`` and optionally
        ``page``, ``click``, ``order``).
    work_dir : path
        A scratch folder (created; the caller removes it).
    events, items : pd.DataFrame, optional
        Canonical events (and items) to build the as-of history from; default: the bundled history.
    source : str
        Name of the impressions in error messages.

    Returns
    -------
    Path
        A parquet file of N ranking rows with the columns of ``DIR/ranking`` (ordered by user bucket,
        request time, request and position, not in input order).

    Raises
    ------
    InputError
        A required impression column is missing, the log is empty, or a request mixes users or times.
    """
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    workflow = load_workflow(saved)
    bundled = saved.root / "workflow" / "history"
    if events is not None:
        store, _ = HistoryStore.build(events, work / "history", saved.events_per_bucket, items)
        # Item CTR comes from the logged ranking rows' impressions and clicks: they are not in a raw event log.
        shutil.copy2(bundled / "item_impression_hours.parquet", store.root / "item_impression_hours.parquet")
        if items is None and (bundled / "items.parquet").exists():
            shutil.copy2(bundled / "items.parquet", store.root / "items.parquet")
        for node in Graph.get_nodes_by_op_type([workflow.output_node], HistoryOperator):
            node.op.set_storage_path(work, copy=False)  # -> work/history, as Workflow.load does
    else:
        store = HistoryStore(bundled)

    labelled = impressions.copy(deep=False)
    for label in ("click", "order"):
        if label not in labelled.columns:
            labelled[label] = 0
    frame = impression_candidates(labelled, source)
    frame["window"] = saved.window_numbers(frame["request_ts"].to_numpy())
    if saved.with_bias:
        schema = workflow.output_schema
        for column, raw in (("position_index", "position"), ("position_page", "page")):
            top = int(schema[column].properties["domain"]["max"]) - 1  # index = raw + 1
            frame[raw] = np.minimum(frame[raw].to_numpy(), top)
    candidates = work / "candidates.parquet"
    buckets = write_window(frame, candidates, store.n_buckets)

    dataset = Dataset(dd.read_parquet(str(candidates), split_row_groups=True), cpu=True)
    if cudf is not None:  # pragma: no cover - GPU machines only
        dataset.to_gpu()
    ddf = workflow.transform(dataset).to_ddf()
    columns = output_columns(saved.with_bias)
    # request_id is passed through raw: its type is the new log's, whatever the training log's was.
    request_type = pa.string() if is_text_ids(frame["request_id"]) else pa.int64()
    rows_schema = arrow_schema(workflow.output_schema, columns, {"request_id": request_type})
    write_windows(ddf, [1] * len(buckets), work / "ranking", rows_schema)
    return work / "ranking" / "0001" / "train.parquet"

