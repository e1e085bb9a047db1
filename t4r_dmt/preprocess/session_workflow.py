"""The NVTabular graph of the session ETL: prepared events in, one row per session out.

It follows T4R's "end-to-end-session-based" ETL: Categorify per event, time features per event,
``Groupby`` on the session sorted by time into list columns, ``ListSlice`` to the first
``max_length`` interactions, ``Filter`` of sessions shorter than ``min_length``. Everything that is
saved with the workflow is a module-level function or a small class (never a lambda), so the saved
workflow unpickles in another process.
"""

from __future__ import annotations

import numpy as np
import nvtabular as nvt
import pandas as pd
from merlin.schema import Tags
from nvtabular import ops

from t4r_dmt.preprocess.session_categorify import NullSafeCategorify
from t4r_dmt.preprocess.session_events import BEHAVIOURS
from t4r_dmt.preprocess.session_groupby import SortedGroupby

_SECONDS_PER_DAY = 86_400
_SECONDS_PER_WEEK = 7 * _SECONDS_PER_DAY
# 1970-01-01 was a Thursday: shift so that Monday 00:00 UTC is phase 0 of the week.
_EPOCH_WEEKDAY_SHIFT = 3 * _SECONDS_PER_DAY

#: Categorical list columns (int64 codes), in output order.
CATEGORICAL_LISTS: tuple[str, ...] = ("item_id-list", "category-list", "brand-list", "event_type-list")
#: Continuous list columns (float32), in output order.
CONTINUOUS_LISTS: tuple[str, ...] = (
    "et_hour_sin-list", "et_hour_cos-list", "et_dayofweek_sin-list", "et_dayofweek_cos-list",
    "time_gap_log_norm-list",
)
#: Untagged per-session scalars (not model features), in output order.
SCALARS: tuple[str, ...] = ("session_id", "window", "timestamp-first", "item_id-count")


def _phase(seconds: pd.Series, period: int, shift: int = 0) -> np.ndarray:
    return (2.0 * np.pi / period) * ((seconds.to_numpy(np.int64) + shift) % period)


def hour_sin(timestamp: pd.Series) -> pd.Series:
    """sin of the time of day, ``(N,)`` Unix seconds -> ``(N,)`` float32 in [-1, 1]."""
    return pd.Series(np.sin(_phase(timestamp, _SECONDS_PER_DAY)).astype(np.float32), index=timestamp.index)


def hour_cos(timestamp: pd.Series) -> pd.Series:
    """cos of the time of day, ``(N,)`` Unix seconds -> ``(N,)`` float32 in [-1, 1]."""
    return pd.Series(np.cos(_phase(timestamp, _SECONDS_PER_DAY)).astype(np.float32), index=timestamp.index)


def dayofweek_sin(timestamp: pd.Series) -> pd.Series:
    """sin of the time of week (Monday 00:00 UTC = 0), ``(N,)`` -> ``(N,)`` float32."""
    phase = _phase(timestamp, _SECONDS_PER_WEEK, _EPOCH_WEEKDAY_SHIFT)
    return pd.Series(np.sin(phase).astype(np.float32), index=timestamp.index)


def dayofweek_cos(timestamp: pd.Series) -> pd.Series:
    """cos of the time of week (Monday 00:00 UTC = 0), ``(N,)`` -> ``(N,)`` float32."""
    phase = _phase(timestamp, _SECONDS_PER_WEEK, _EPOCH_WEEKDAY_SHIFT)
    return pd.Series(np.cos(phase).astype(np.float32), index=timestamp.index)


#: Per-event cyclical time features (``LambdaOp`` functions of Unix seconds), by output name.
CYCLICAL_FEATURES = {
    "et_hour_sin": hour_sin, "et_hour_cos": hour_cos,
    "et_dayofweek_sin": dayofweek_sin, "et_dayofweek_cos": dayofweek_cos,
}

_SCALAR_NAMES = {"window-first": "window", "event_seq-count": "item_id-count"}


def scalar_name(groupby_name: str) -> str:
    """Output name of a per-session scalar (``Rename`` function; picklable, unlike a lambda)."""
    return _SCALAR_NAMES.get(groupby_name, groupby_name)


class MinSessionLength:
    """``Filter`` predicate: keep sessions with ``item_id-count >= min_length`` (picklable)."""

    def __init__(self, min_length: int) -> None:
        self.min_length = min_length

    def __call__(self, df: pd.DataFrame) -> pd.Series:
        return df["item_id-count"] >= self.min_length


def build_session_workflow(
    max_length: int, min_length: int, freq_threshold: int, categories_dir: str
) -> nvt.Workflow:
    """The unfitted session workflow.

    Parameters
    ----------
    max_length:
        Sessions keep their first ``max_length`` interactions (T4R's ``ListSlice(0, 20)``).
    min_length:
        Sessions with fewer interactions (after repeat removal, before truncation) are dropped.
    freq_threshold:
        Items seen fewer times are encoded as out-of-vocabulary (code 2).
    categories_dir:
        Where Categorify writes its vocabularies while fitting; ``Workflow.save`` copies them into
        ``<workflow>/categories``.
    """
    item = (
        ["item_id"]
        >> NullSafeCategorify(freq_threshold=freq_threshold, out_path=categories_dir)
        >> ops.TagAsItemID()
    )
    attributes = (
        ["category", "brand"] >> NullSafeCategorify(out_path=categories_dir) >> ops.TagAsItemFeatures()
    )
    # A fixed vocabulary, so a behaviour's code (view 3, cart 4, purchase 5, remove_from_cart 6) does
    # not depend on which behaviours a dataset happens to contain.
    behaviour = ["event_type"] >> NullSafeCategorify(
        vocabs={"event_type": pd.Series(BEHAVIOURS, name="event_type")}, out_path=categories_dir
    )
    cyclical = [
        ["timestamp"] >> ops.LambdaOp(fn, dtype=np.float32, tags=[Tags.CONTINUOUS]) >> ops.Rename(name=name)
        for name, fn in CYCLICAL_FEATURES.items()
    ]
    # Seconds since the previous interaction of the session (0 for the first): the input is sorted by
    # (session, time) and no session spans two partitions, which DifferenceLag needs.
    time_gap = (
        ["timestamp"]
        >> ops.DifferenceLag(partition_cols=["session_id"], shift=1)
        >> ops.FillMissing(fill_val=0.0)
        >> ops.LogOp()
        >> ops.Normalize(out_dtype=np.float32)
        >> ops.Rename(name="time_gap_log_norm")
    )
    per_event = ["session_id", "event_seq", "window", "timestamp"] + item + attributes + behaviour + time_gap
    for feature in cyclical:
        per_event = per_event + feature

    list_inputs = [name.removesuffix("-list") for name in CATEGORICAL_LISTS + CONTINUOUS_LISTS]
    aggs: dict[str, list[str]] = {name: ["list"] for name in list_inputs}
    aggs.update({"timestamp": ["first"], "window": ["first"], "event_seq": ["count"]})
    sessions = per_event >> SortedGroupby(
        groupby_cols=["session_id"], sort_cols=["event_seq"], aggs=aggs, name_sep="-"
    )
    lists = (
        sessions[list(CATEGORICAL_LISTS + CONTINUOUS_LISTS)]
        >> ops.ListSlice(0, max_length)
        >> ops.AddTags([Tags.LIST])
    )
    # One selection per Groupby consumer: merlin's executor re-runs the whole upstream graph for each.
    scalars = sessions[["session_id", "window-first", "timestamp-first", "event_seq-count"]] >> ops.Rename(
        f=scalar_name
    )
    output = (scalars + lists) >> ops.Filter(f=MinSessionLength(min_length))
    return nvt.Workflow(output)
