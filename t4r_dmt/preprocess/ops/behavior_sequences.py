"""BehaviorSequences: each user's most recent N events of each behaviour strictly before the request.

The as-of join of the ranking workflow, in the style of ``nvtabular.ops.JoinExternal``: the operator
holds (a path to) the event history and works per partition. Per behaviour b it emits
``{b}_item_id_seq``, ``{b}_category_seq`` and ``{b}_brand_seq``: raw product ids, category ids and
brands, oldest first, variable length (never padded: the model pads). Every event counts, repeats
included. An event logged at exactly the request time is excluded (``searchsorted(side="left")``),
which is what keeps a click logged in the same second as its request (the label) out of the input.

``{b}_time_gap_bucket_seq`` lines up with those three element by element: how long before the request
each event happened, as the log2 bucket of the gap in whole seconds (``time_gap_buckets``; the codes are
described at ``t4r_dmt.schema.TIME_GAP_BUCKETS``), as the paper's code buckets its ``seq_ts``
(``int(log2(ts)) + 1``, clipped at 23 there). The gap is always >= 1 ns, since events at or after the
request are left out. The codes are final (no vocabulary to fit): the column leaves this operator tagged
CATEGORICAL, LIST, SEQUENCE and ``behavior_{b}`` with its ``int_domain``, and the workflow keeps it out of
``SharedCategorify``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
from merlin.schema import ColumnSchema, Schema, Tags

from t4r_dmt.preprocess.asof import gather_ranges, unique_queries
from t4r_dmt.preprocess.history import user_bucket
from t4r_dmt.preprocess.lists import flat_to_list, new_frame, to_numpy
from t4r_dmt.preprocess.ops.history_operator import HistoryOperator
from t4r_dmt.schema import BEHAVIORS, TIME_GAP_BUCKETS, behavior_tag, sequence_columns, time_gap_bucket_column

#: sequence attribute -> the field of ``BehaviorEvents`` it is read from (in ``SEQUENCE_SUFFIXES`` order)
SEQUENCE_FIELDS: dict[str, str] = {"item": "product", "category": "category", "brand": "brand"}
_NS_PER_SECOND = 1_000_000_000
#: The schema domain of every time-gap bucket column (its ``int_domain``).
TIME_GAP_DOMAIN: dict[str, object] = {"min": 0, "max": TIME_GAP_BUCKETS - 1, "name": "time_gap_bucket"}


def time_gap_buckets(gap_ns: np.ndarray) -> np.ndarray:
    """Log2 bucket codes of time gaps: ``(E,)`` int64 ns ``-> (E,)`` int64 in ``1 .. TIME_GAP_BUCKETS - 1``.

    ``1 + min(floor(log2(max(seconds, 1))), TIME_GAP_BUCKETS - 2)`` with ``seconds = gap_ns // 1e9`` (whole
    seconds: any gap under 2 s is code 1, 2-3 s code 2, 1 h code 12); code 0 stays free for padding. The
    exponent is read from the float64 bits of ``seconds`` (exact: every int64 nanosecond count holds fewer
    than 2**53 seconds; ``np.log2`` may round ``2**k - 1`` up to ``k``), in place on two arrays (these lists
    hold millions of leaves per partition).
    """
    seconds = np.asarray(gap_ns, dtype=np.int64) // _NS_PER_SECOND
    np.maximum(seconds, 1, out=seconds)
    code = seconds.astype(np.float64).view(np.int64)  # seconds = 1.f * 2**e: biased exponent e + 1023 in bits 52-62
    code >>= 52
    code -= 1023 - 1  # 1 + e = 1 + floor(log2(seconds))
    np.minimum(code, TIME_GAP_BUCKETS - 1, out=code)
    return code


class BehaviorSequences(HistoryOperator):
    """As-of join of behaviour sequences.

    Input columns: ``user_id`` (int64) and ``request_ts`` (int64 ns). Output: 4 list columns per
    behaviour, shape (rows, <= N), equal lengths row by row; item and category leaves int64, brand leaves
    str or None, time-gap bucket leaves int64 in ``1 .. TIME_GAP_BUCKETS - 1`` (Arrow-backed pandas columns
    on CPU, see ``lists.py``).

    Parameters
    ----------
    store_path : str or Path
        Folder of the ``HistoryStore``.
    lengths : dict
        N per behaviour, e.g. ``{"click": 50, "cart": 10, "order": 10}``.
    """

    def __init__(self, store_path: Any, lengths: dict[str, int]) -> None:
        super().__init__(store_path)
        unknown = set(lengths) - set(BEHAVIORS)
        if unknown:
            raise ValueError(f"unknown behaviours {sorted(unknown)}; choose from {list(BEHAVIORS)}")
        self.lengths = dict(lengths)
        self.outputs = {}
        for behavior, n in self.lengths.items():
            for column, field in zip(sequence_columns(behavior), SEQUENCE_FIELDS.values(), strict=True):
                self.outputs[column] = (np.dtype("O") if field == "brand" else np.dtype(np.int64), n)
            self.outputs[time_gap_bucket_column(behavior)] = (np.dtype(np.int64), n)

    def compute(self, df: Any) -> Any:
        user = to_numpy(df["user_id"]).astype(np.int64, copy=False)
        time = to_numpy(df["request_ts"]).astype(np.int64, copy=False)
        store = self.store
        bucket = user_bucket(user, store.n_buckets)
        # Rows grouped by bucket (stable): one history load per bucket, then restore the row order.
        by_bucket = np.argsort(bucket, kind="stable")
        splits = np.flatnonzero(np.diff(bucket[by_bucket])) + 1
        pieces: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {name: [] for name in self.outputs}
        for rows in np.split(by_bucket, splits) if len(by_bucket) else []:
            history = store.bucket(int(bucket[rows[0]]))
            (q_user, q_time), inverse = unique_queries(user[rows], time[rows])
            for behavior, n in self.lengths.items():
                events = history[behavior]
                bounds = events.index("user").bounds([q_user], [q_time])
                end = bounds.ends[0]
                start = np.maximum(bounds.group_start, end - n)
                picked, offsets = gather_ranges(bounds.order, start[inverse], end[inverse])
                for column, field in zip(sequence_columns(behavior), SEQUENCE_FIELDS.values(), strict=True):
                    brands = events.arrow_brand() if field == "brand" else None
                    leaves = getattr(events, field)[picked] if brands is None else brands.take(pa.array(picked))
                    pieces[column].append((leaves, offsets))
                gaps = time_gap_bucket_column(behavior)
                if gaps in pieces:  # absent from an operator pickled in a workflow saved before it existed
                    request = np.repeat(time[rows], np.diff(offsets))
                    pieces[gaps].append((time_gap_buckets(request - events.time[picked]), offsets))
        restore = np.argsort(by_bucket, kind="stable")
        columns = {
            name: flat_to_list(*_in_row_order(parts, restore, self.outputs[name][0]), like=df)
            for name, parts in pieces.items()
        }
        return new_frame(columns, like=df)

    def _compute_tags(self, col_schema: ColumnSchema, input_schema: Schema) -> ColumnSchema:
        behavior = self._time_gap_behavior(col_schema.name)
        if behavior is None:  # the id sequences: SharedCategorify tags them
            return col_schema
        return col_schema.with_tags([Tags.CATEGORICAL, Tags.LIST, Tags.SEQUENCE, behavior_tag(behavior)])

    def _compute_properties(self, col_schema: ColumnSchema, input_schema: Schema) -> ColumnSchema:
        if self._time_gap_behavior(col_schema.name) is None:
            return col_schema
        return col_schema.with_properties({"domain": dict(TIME_GAP_DOMAIN)})

    def _time_gap_behavior(self, column: str) -> str | None:
        """The behaviour whose time-gap list ``column`` is, or None for an id sequence."""
        return next((b for b in self.lengths if column == time_gap_bucket_column(b)), None)


def _in_row_order(
    parts: list[tuple[Any, np.ndarray]], restore: np.ndarray, dtype: Any
) -> tuple[Any, np.ndarray]:
    """Concatenate per-bucket list pieces (numpy or Arrow leaves), then reorder rows back to the
    input order."""
    if not parts:
        return np.zeros(0, dtype=dtype), np.zeros(1, dtype=np.int64)
    values: Any
    if all(isinstance(v, pa.Array) for v, _ in parts):
        values = pa.concat_arrays([v for v, _ in parts]) if len(parts) > 1 else parts[0][0]
    else:
        leaves = [v.to_numpy(zero_copy_only=False) if isinstance(v, pa.Array) else v for v, _ in parts]
        values = np.concatenate(leaves).astype(dtype, copy=False)
    lengths = np.concatenate([np.diff(o) for _, o in parts])
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    if len(parts) == 1 and np.array_equal(restore, np.arange(len(restore))):
        return values, offsets
    picked, new_offsets = gather_ranges(np.arange(len(values)), offsets[restore], offsets[restore + 1])
    if isinstance(values, pa.Array):
        return values.take(pa.array(picked)), new_offsets
    return values[picked], new_offsets
