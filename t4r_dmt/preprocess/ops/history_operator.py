"""Base class of the operators that read the on-disk event history (``HistoryStore``).

Why a ``StatOperator`` although nothing is fitted: ``nvt.Workflow.save`` calls
``set_storage_path(path, copy=True)`` on stat operators and ``Workflow.load`` calls it again with the
new location, exactly as for Categorify's vocabularies. That bundles the history into
``DIR/workflow/history/`` and keeps a moved or reloaded workflow pointing at it. ``fit`` is a no-op.

Why results are memoised: merlin.dag's executor runs a node once per downstream *path* (a node whose
output feeds three others runs three times per partition). The as-of joins are the expensive part of
the graph, so each keeps its last output keyed by a digest of its input columns; a repeated call on the
same partition is a dictionary lookup. One entry per operator: with a pool of 4 entries shared by the 5
operators of the ranking workflow, the last partition the fit computed was evicted before the transform, which
starts with it, could read it again.

Why the fit's outputs are kept (:func:`reuse_fit_outputs`): ``Workflow.fit`` computes every operator on the fit
windows' partitions, and ``Workflow.transform`` computes them again on the same partitions (at 1M events, 4 of
the 16 partitions: a fifth of the as-of work). Inside the context every output is also kept until a transform
reads it once, or until the context ends; the transform walks user buckets, so the last fit partition is read
only late, which is why outputs are kept until read rather than in a small recency pool (the price: window 1's
outputs, about 70 MB a partition at 1M events, are held until then).
"""

from __future__ import annotations

import hashlib
import shutil
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from dask.delayed import Delayed
from merlin.dag.ops.stat_operator import StatOperator
from merlin.dag.selector import ColumnSelector
from merlin.schema import ColumnSchema, Schema

from t4r_dmt.preprocess.history import BehaviorEvents, HistoryStore, brand_codes, user_bucket
from t4r_dmt.preprocess.lists import to_numpy

_MEMO_OPERATORS = 8  # operators remembered (a ranking workflow has 5), least recently used dropped first
_memo: OrderedDict[str, tuple[tuple[str, str], Any]] = OrderedDict()  # operator token -> (input key, output)
_memo_lock = threading.Lock()
_KEPT_LIMIT = 64  # outputs kept from a fit at most (a 4-bucket fit of 5 operators keeps 20)
_kept: dict[tuple[str, tuple[str, str]], Any] = {}  # (operator token, input key) -> output kept from the fit
_keeping = False  # True while the fit runs inside reuse_fit_outputs


@contextmanager
def reuse_fit_outputs() -> Iterator[Callable[[], AbstractContextManager[None]]]:
    """Let a transform read what the fit computed on the same partitions instead of computing it again.

    Yields ``fitting``: what the operators compute inside ``with fitting():`` is kept until a transform reads
    it once, or until this context ends (which forgets the rest). Outputs computed outside ``fitting`` are not
    kept. Per process: under a Dask cluster the workers keep nothing, and every partition is computed as before.

    >>> with reuse_fit_outputs() as fitting:
    ...     with fitting():
    ...         workflow.fit(dataset)  # doctest: +SKIP
    ...     workflow.transform(dataset)  # doctest: +SKIP
    """
    @contextmanager
    def fitting() -> Iterator[None]:
        global _keeping
        _keeping = True
        try:
            yield
        finally:
            _keeping = False

    try:
        yield fitting
    finally:
        with _memo_lock:
            _kept.clear()


class HistoryOperator(StatOperator):
    """An operator backed by a ``HistoryStore``; subclasses implement ``compute``.

    Subclasses declare ``outputs``: output column name -> (numpy dtype, max list length or None for a
    scalar column), and ``compute(df) -> frame`` with exactly those columns in the input row order.
    """

    outputs: dict[str, tuple[Any, int | None]]

    def __init__(self, store_path: str | Path) -> None:
        super().__init__()
        self.store_path = str(store_path)
        self._token = uuid.uuid4().hex

    @property
    def store(self) -> HistoryStore:
        return HistoryStore(self.store_path)

    # -- StatOperator protocol: nothing to fit, only storage to bundle ---------------------------
    def fit(self, col_selector: ColumnSelector, ddf: Any) -> Delayed:
        return Delayed("no-op", {"no-op": {}})

    def fit_finalize(self, dask_stats: Any) -> None:
        return None

    def clear(self) -> None:
        return None

    def set_storage_path(self, new_path: str | Path, copy: bool = False) -> None:
        target = Path(new_path) / "history"
        source = Path(self.store_path)
        if copy and source.exists() and source.resolve() != target.resolve():
            shutil.copytree(source, target, dirs_exist_ok=True)
        self.store_path = str(target)
        self._token = uuid.uuid4().hex  # never serve results computed from another store

    # -- transform ---------------------------------------------------------------------------------
    def transform(self, col_selector: ColumnSelector, df: Any) -> Any:
        key = (self.store_path, _digest(df, col_selector.names))
        with _memo_lock:
            last = _memo.get(self._token)
            if last is not None:
                _memo.move_to_end(self._token)
        if last is not None and last[0] == key:
            return last[1].copy(deep=False)
        with _memo_lock:
            kept = _kept.pop((self._token, key), None)
        out = self.compute(df) if kept is None else kept
        with _memo_lock:
            if _keeping and len(_kept) < _KEPT_LIMIT:
                _kept[(self._token, key)] = out
            _memo[self._token] = (key, out)
            _memo.move_to_end(self._token)
            while len(_memo) > _MEMO_OPERATORS:
                _memo.popitem(last=False)
        return out.copy(deep=False)

    def compute(self, df: Any) -> Any:
        raise NotImplementedError

    def by_bucket(self, user: np.ndarray) -> Iterator[tuple[np.ndarray | slice, dict[str, BehaviorEvents]]]:
        """``(rows, events)`` per user bucket present in ``user`` (N,): the row indices of its users and that
        bucket's events per behaviour, loaded once. ``rows`` is ``slice(None)`` when one bucket holds every row
        (a ranking partition always does): indexing with it gives views, not copies."""
        store = self.store
        bucket = user_bucket(user, store.n_buckets)
        buckets = np.unique(bucket)
        if len(buckets) == 1:
            yield slice(None), store.bucket(int(buckets[0]))
            return
        for b in buckets:
            yield np.flatnonzero(bucket == b), store.bucket(int(b))

    # -- schema ------------------------------------------------------------------------------------
    def column_mapping(self, col_selector: ColumnSelector) -> dict[str, list[str]]:
        return {name: list(col_selector.names) for name in self.outputs}

    def _compute_dtype(self, col_schema: ColumnSchema, input_schema: Schema) -> ColumnSchema:
        dtype, max_len = self.outputs[col_schema.name]
        return col_schema.with_dtype(dtype, is_list=max_len is not None, is_ragged=max_len is not None)

    def _compute_shape(self, col_schema: ColumnSchema, input_schema: Schema) -> ColumnSchema:
        _, max_len = self.outputs[col_schema.name]
        return col_schema.with_shape((None,) if max_len is None else (None, (0, max_len)))

    def _compute_tags(self, col_schema: ColumnSchema, input_schema: Schema) -> ColumnSchema:
        return col_schema

    def _compute_properties(self, col_schema: ColumnSchema, input_schema: Schema) -> ColumnSchema:
        return col_schema

    @property
    def dynamic_dtypes(self) -> bool:
        return False


def _digest(df: Any, names: list[str]) -> str:
    digest = hashlib.blake2b(digest_size=16)
    digest.update(repr((len(df), list(names))).encode())
    for name in names:
        values = to_numpy(df[name])
        if values.dtype == object:  # strings / None (brands): hash the values, not the pointers
            values = brand_codes(values)
        digest.update(np.ascontiguousarray(values).view(np.uint8).tobytes())
    return digest.hexdigest()
