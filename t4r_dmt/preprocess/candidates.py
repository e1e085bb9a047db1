"""Ranking candidates: the workflow's input rows, one per (request, candidate item).

Columns (all int64): ``request_id``, ``user_id``, ``request_ts`` (ns), ``product_id``, ``window``,
``click``, ``order`` and, from an impression log only, ``position`` and ``page``; ``request_id`` is the raw id
(object of str when the log's request ids are text).

Candidates are written per window to ``scratch/candidates/window-0001.parquet`` ..., sorted by
(user bucket, request time, request, position), with one parquet row group per user bucket: a Dask
partition is then one row group, holds whole requests, and needs one bucket of history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from t4r_dmt.errors import InputError
from t4r_dmt.preprocess.history import hour_of, user_bucket
from t4r_dmt.preprocess.lists import to_numpy
from t4r_dmt.windows import assign_windows

POSITION_RATE_PRIOR = 20.0  # impressions of smoothing of a position's click rate towards all positions'
IMPRESSION_COLUMNS = ("request_id", "user_id", "event_time", "product_id", "position", "click", "order")
PAGE_SIZE = 10  # pages when a frame has no ``page`` column (the readers always fill it)


@dataclass
class CandidateFiles:
    """Per-window candidate files and what was learnt while writing them."""

    paths: dict[int, Path] = field(default_factory=dict)
    buckets: dict[int, list[int]] = field(default_factory=dict)  # bucket of each row group, per window
    window_starts: list[str] = field(default_factory=list)
    item_hours: list[pd.DataFrame] = field(default_factory=list)
    max_position: int = 0
    max_page: int = 0
    dropped: dict[str, int] = field(default_factory=dict)

    def item_hour_counts(self) -> pd.DataFrame:
        """Impressions / clicks per (product_id, hour) over all windows (a pair may repeat across parts)."""
        return pd.concat(self.item_hours, ignore_index=True)


def impression_candidates(impressions: pd.DataFrame, source: str = "impressions") -> pd.DataFrame:
    """Validate a canonical impressions frame and turn it into candidate rows (without ``window``).

    Raises
    ------
    InputError
        A required column is missing, the log is empty, or one request has several users or times.
    """
    missing = [c for c in IMPRESSION_COLUMNS if c not in impressions.columns]
    if missing:
        raise InputError(source, "required impression column is missing", column=missing[0])
    if len(impressions) == 0:
        raise InputError(source, "the impression log has no rows")
    position = impressions["position"].to_numpy(np.int64)
    page = impressions["page"].to_numpy(np.int64) if "page" in impressions.columns else position // PAGE_SIZE
    frame = pd.DataFrame(
        {
            "request_id": raw_request_ids(impressions["request_id"], source),
            "user_id": impressions["user_id"].to_numpy(np.int64),
            "request_ts": to_numpy(impressions["event_time"]),
            "product_id": impressions["product_id"].to_numpy(np.int64),
            "click": impressions["click"].to_numpy(np.int64),
            "order": impressions["order"].to_numpy(np.int64),
            "position": position,
            "page": page,
        }
    )
    per_request = frame.groupby("request_id")[["user_id", "request_ts"]].nunique()
    bad = per_request[(per_request > 1).any(axis=1)]
    if len(bad):
        raise InputError(
            source,
            f"{len(bad)} request(s) mix several users or request times; a request is one list shown "
            "to one user at one time",
            column="request_id",
            value=bad.index[0].item() if hasattr(bad.index[0], "item") else bad.index[0],
        )
    return frame


def raw_request_ids(values: pd.Series, source: str = "impressions") -> np.ndarray:
    """(N,) request ids as they are: int64 for integers, object of str for text; InputError otherwise."""
    array = values.to_numpy()
    if array.dtype.kind in "iu":
        return array.astype(np.int64, copy=False)
    array = array.astype(object)
    is_text = np.fromiter((isinstance(v, str) for v in array), bool, len(array))
    if not is_text.all():
        first = int(np.flatnonzero(~is_text)[0])
        raise InputError(source, "request ids must all be integers or all be text", column="request_id",
                         row=first, value=array[first])
    return array


def request_sort_key(request_ids: np.ndarray) -> np.ndarray:
    """(N,) int64 that sorts like the request ids (the ids themselves, or the rank of each text)."""
    if request_ids.dtype.kind in "iu":
        return request_ids
    return pd.factorize(request_ids, sort=True)[0].astype(np.int64)


def check_windows(windows: np.ndarray, starts: pd.DatetimeIndex, source: str, what: str) -> None:
    """Every window 1..W must hold rows: an empty one means a gap in the log."""
    present = np.zeros(len(starts) + 1, dtype=bool)
    present[np.unique(windows)] = True
    empty = np.flatnonzero(~present[1:]) + 1
    if len(empty):
        w = int(empty[0])
        raise InputError(
            source,
            f"window {w} (starting {starts[w - 1]}) has no {what}; {len(empty)} window(s) are empty. "
            "Choose a longer --window or remove the gap from the log",
            column="event_time",
        )


def write_window(frame: pd.DataFrame, path: Path, n_buckets: int) -> list[int]:
    """Write one window's candidates sorted by (bucket, time, request, position), a row group per bucket.

    Returns the bucket of each row group, in file order.
    """
    columns = {name: frame[name].to_numpy() for name in frame.columns}
    bucket = user_bucket(columns["user_id"], n_buckets)
    order = np.lexsort(_sort_keys(columns, bucket))
    return _write_row_groups({name: values[order] for name, values in columns.items()}, bucket[order], path)


def _sort_keys(columns: dict[str, np.ndarray], bucket: np.ndarray) -> list[np.ndarray]:
    """``np.lexsort`` keys (the last one primary) of the order (bucket, time, request, position)."""
    keys = [request_sort_key(columns["request_id"]), columns["request_ts"], bucket]
    if "position" in columns:
        keys.insert(0, columns["position"])
    return keys


def _write_row_groups(columns: dict[str, np.ndarray], bucket: np.ndarray, path: Path) -> list[int]:
    """Write sorted candidate columns, (N,) each, with one parquet row group per run of equal ``bucket`` (N,);
    returns the bucket of each row group.

    Built from numpy columns, not a pandas frame: taking rows of a frame that has gained a column first
    consolidates its blocks, a copy of the whole frame.
    """
    bounds = np.flatnonzero(np.diff(bucket)) + 1
    table = pa.table(columns)
    path.parent.mkdir(parents=True, exist_ok=True)
    starts, stops = np.r_[0, bounds], np.r_[bounds, len(bucket)]
    with pq.ParquetWriter(path, table.schema) as writer:
        for start, stop in zip(starts, stops, strict=True):
            writer.write_table(table.slice(int(start), int(stop - start)))
    return [int(b) for b in bucket[starts]]


def item_hour_counts(frame: pd.DataFrame, expected_clicks: bool = False) -> pd.DataFrame:
    """Impressions and clicks per (product_id, hour of ``request_ts``) of a candidate frame; with
    ``expected_clicks`` (and a ``position`` column) also ``expected_clicks``: the sum over the item's
    impressions of the click rate of the position it was shown at (``position_click_rates``), the denominator
    of a position-debiased CTR."""
    keyed = pd.DataFrame({"product_id": frame["product_id"].to_numpy(np.int64),
                          "hour": hour_of(frame["request_ts"].to_numpy()), "click": frame["click"].to_numpy()})
    aggregations: dict[str, tuple[str, str]] = {"impressions": ("click", "size"), "clicks": ("click", "sum")}
    if expected_clicks and "position" in frame.columns:
        keyed["expected"] = position_click_rates(keyed["hour"].to_numpy(), frame["position"].to_numpy(np.int64),
                                                 keyed["click"].to_numpy())
        aggregations["expected_clicks"] = ("expected", "sum")
        # Float sums in one order whatever the input's row order (the store's bytes do not depend on it).
        keyed = keyed.sort_values(["product_id", "hour", "expected"], kind="stable")
    counts = keyed.groupby(["product_id", "hour"], sort=True).agg(**aggregations).reset_index()
    integers = ["product_id", "hour", "impressions", "clicks"]
    counts[integers] = counts[integers].astype(np.int64)
    return counts


def position_click_rates(hour: np.ndarray, position: np.ndarray, click: np.ndarray,
                         prior: float = POSITION_RATE_PRIOR) -> np.ndarray:
    """Per impression (N,): the click rate of its position over the hours up to and including its own.

    ``(clicks + prior * r) / (impressions + prior)`` over all impressions at that position in hours <= the
    impression's hour, ``r`` the click rate of all positions over the same hours (a position seen rarely so
    far leans on it). An item's counts of hour h are read only by requests after h has ended (``ItemRates``),
    so these rates use nothing logged after such a request.
    """
    frame = pd.DataFrame({"hour": hour, "position": position, "click": click.astype(np.float64)})
    cells = frame.groupby(["position", "hour"], sort=True)["click"].agg(["size", "sum"]).reset_index()
    cells["n"] = cells.groupby("position")["size"].cumsum()
    cells["c"] = cells.groupby("position")["sum"].cumsum()
    overall = frame.groupby("hour", sort=True)["click"].agg(["size", "sum"]).cumsum()
    rate_all = (overall["sum"] / overall["size"]).reindex(cells["hour"]).to_numpy()
    cells["rate"] = (cells["c"] + prior * rate_all) / (cells["n"] + prior)
    return np.asarray(frame[["position", "hour"]].merge(cells[["position", "hour", "rate"]], how="left",
                                                        on=["position", "hour"])["rate"].to_numpy())


def write_impression_windows(
    impressions: pd.DataFrame, window: str, folder: Path, n_buckets: int, source: str = "impressions",
    expected_clicks: bool = False,
) -> CandidateFiles:
    """Validate the impression log and write its candidates window by window (``expected_clicks``: also count
    each item's expected clicks given its positions, for ``--ctr_position_debias``)."""
    frame = impression_candidates(impressions, source)
    numbers, starts = assign_windows(frame["request_ts"].to_numpy(), window)
    check_windows(numbers, starts, source, "impressions")
    files = CandidateFiles(window_starts=[str(s) for s in starts])
    files.max_position = int(frame["position"].max()) + 1
    files.max_page = int(frame["page"].max()) + 1
    files.item_hours.append(item_hour_counts(frame, expected_clicks))
    columns = {name: frame[name].to_numpy() for name in frame.columns} | {"window": numbers}
    bucket = user_bucket(columns["user_id"], n_buckets)
    order = np.lexsort([*_sort_keys(columns, bucket), numbers])  # by window, then as write_window sorts
    columns = {name: values[order] for name, values in columns.items()}
    bucket = bucket[order]
    bounds = np.searchsorted(columns["window"], np.arange(1, len(starts) + 2))
    for w in range(1, len(starts) + 1):
        rows = slice(bounds[w - 1], bounds[w])
        path = folder / f"window-{w:04d}.parquet"
        files.buckets[w] = _write_row_groups({name: values[rows] for name, values in columns.items()},
                                             bucket[rows], path)
        files.paths[w] = path
    return files
