"""Vectorised as-of lookups: "the history rows of this group strictly before this time".

Every ranking feature that looks into the past (behaviour sequences, windowed counts, user-item counts,
candidate attributes, item rates from earlier windows) reduces to one question, answered here for all
queries at once: for a query ``(group keys, t)``, which history rows share the group and have
``time < t``? History rows are sorted by ``(group, time)``; a query then owns the contiguous slice
``order[group_start:end]`` where ``end`` is ``searchsorted(..., side="left")`` of ``(group, t)``, so
a history row logged at exactly ``t`` (e.g. the click that *is* the label) is never included.

Multi-column keys are turned into one sortable int64 key: the rank of the group times ``(number of
distinct times + 1)`` plus the rank of the time (``AsOfIndex``). The history side is sorted once and
cached by the operators; queries are binary searches. No Python loop runs per row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def dense_rank(*keys: np.ndarray) -> tuple[np.ndarray, int]:
    """Dense rank of each row's key tuple, in lexicographic order.

    Parameters
    ----------
    *keys : np.ndarray, shape (N,) each
        Integer key columns, the first one most significant.

    Returns
    -------
    ranks : np.ndarray[int64], shape (N,)
        ``0`` for the smallest tuple, equal tuples share a rank.
    n_unique : int
        Number of distinct tuples.
    """
    if not keys:
        raise ValueError("dense_rank needs at least one key column")
    n = len(keys[0])
    if n == 0:
        return np.zeros(0, dtype=np.int64), 0
    if len(keys) == 1:
        uniques, inverse = np.unique(keys[0], return_inverse=True)
        return inverse.astype(np.int64, copy=False), len(uniques)
    order = np.lexsort(keys[::-1])
    changed = np.zeros(n, dtype=bool)
    for key in keys:
        sorted_key = key[order]
        changed[1:] |= sorted_key[1:] != sorted_key[:-1]
    ranks = np.empty(n, dtype=np.int64)
    ranks[order] = np.cumsum(changed)
    return ranks, int(changed.sum()) + 1


@dataclass(frozen=True)
class AsOfBounds:
    """Where each query's past lies in the sorted history.

    Attributes
    ----------
    order : np.ndarray[int64], shape (H,)
        History row indices sorted by ``(group, time)``; ties keep the input order.
    group_start : np.ndarray[int64], shape (Q,)
        First position in ``order`` of the query's group.
    ends : list of np.ndarray[int64], shape (Q,) each
        One per query-time array: the first position in ``order`` whose row is in a later group or
        has ``time >= t``. ``order[group_start:end]`` are the group's rows strictly before ``t``,
        oldest first.
    """

    order: np.ndarray
    group_start: np.ndarray
    ends: list[np.ndarray]


class AsOfIndex:
    """History rows sorted by ``(group keys, time)``, built once and queried many times.

    Only the history is sorted (at construction); a query costs a few binary searches. Group keys are
    combined into one int64 by ranking each key column among the history's distinct values; times are
    replaced by their rank among the history's distinct times, and a query time ``t`` by the number
    of distinct history times ``< t``, which keeps the comparison "strictly before" exact.

    Parameters
    ----------
    keys : sequence of np.ndarray[int64], shape (H,) each
        Group columns of the history (e.g. ``[user_id]`` or ``[user_id, product_id]``).
    time : np.ndarray[int64], shape (H,)
        History times (any monotone unit, e.g. nanoseconds or window numbers).
    """

    def __init__(self, keys: Sequence[np.ndarray], time: np.ndarray) -> None:
        if not keys:
            raise ValueError("AsOfIndex needs at least one key column")
        self.uniques, key_ranks = [], []
        for key in keys:
            unique, rank = _distinct(key)
            self.uniques.append(unique)
            key_ranks.append(rank)
        span = int(np.prod([len(u) + 1 for u in self.uniques], dtype=object)) * (len(time) + 1)
        if span >= 2**62:
            raise ValueError(f"too many distinct keys for one int64 search key ({span:.3g} combinations)")
        group = self._combine(key_ranks)
        # Times 0, 1, ..., H - 1 (row positions, as in ``BehaviorEvents.position_index``) are their own ranks, and
        # the rank of a query time t is ``clip(t, 0, H)``: no sort, no search.
        self.positional = bool(np.array_equal(time, np.arange(len(time))))
        if self.positional:
            self.times, time_rank = np.arange(len(time), dtype=np.int64), np.arange(len(time), dtype=np.int64)
        else:
            self.times, time_rank = _distinct(time)
        self.stride = np.int64(len(self.times) + 1)
        hist_key = group * self.stride + time_rank
        # Stable order; an unstable sort (several times faster) is the same order when no two keys tie, as in a
        # positional index.
        self.order = np.argsort(hist_key)
        self.sorted_key = hist_key[self.order]
        if len(hist_key) > 1 and not np.all(self.sorted_key[1:] != self.sorted_key[:-1]):
            self.order = np.argsort(hist_key, kind="stable")
            self.sorted_key = hist_key[self.order]

    def _combine(self, ranks: list[np.ndarray]) -> np.ndarray:
        combined = np.zeros(len(ranks[0]), dtype=np.int64)
        for unique, rank in zip(self.uniques, ranks, strict=True):
            combined = combined * np.int64(len(unique) + 1) + rank
        return combined

    def bounds(
        self, keys: Sequence[np.ndarray | tuple[np.ndarray, np.ndarray]], times: Sequence[np.ndarray]
    ) -> AsOfBounds:
        """Bounds of each query's history rows strictly before each of ``times`` (see AsOfBounds).

        A key column is an array (Q,), or a pair ``(values (D,), index (Q,) into values)`` when the Q queries
        repeat few values (the user of every candidate of a request): each distinct value is looked up once."""
        if len(keys) != len(self.uniques):
            raise ValueError(f"{len(self.uniques)} history key columns but {len(keys)} query key columns")
        if not times:
            raise ValueError("asof bounds need at least one query-time array")
        ranks, known = [], np.ones(len(times[0]), dtype=bool)
        for unique, key in zip(self.uniques, keys, strict=True):
            values, index = key if isinstance(key, tuple) else (key, None)
            rank = np.searchsorted(unique, values)
            if len(unique):
                found = (rank < len(unique)) & (unique[np.minimum(rank, len(unique) - 1)] == values)
            else:
                found = np.zeros(len(values), dtype=bool)
            if index is not None:
                rank, found = rank[index], found[index]
            known &= found
            ranks.append(rank)
        # A key never seen in the history gets an empty range at position 0.
        group = np.where(known, self._combine(ranks), np.int64(-1))
        base = group * self.stride
        ranks_of_times = [
            np.clip(time, 0, len(self.times))
            if self.positional and np.issubdtype(np.asarray(time).dtype, np.integer)
            else _search(self.times, time)
            for time in times
        ]
        # One sort of the queries by group and first time serves every search: the needles of each search are
        # then (nearly) sorted, so consecutive binary searches touch nearby memory. Any order gives the same
        # results. Unknown keys (group -1, needles < 0) sort first; only the known ones are searched.
        by_group = np.argsort(base + ranks_of_times[0])
        searched = by_group[len(known) - int(np.count_nonzero(known)):]
        group_start = np.zeros(len(base), dtype=np.int64)
        group_start[searched] = np.searchsorted(self.sorted_key, base[searched], side="left")
        # The first history key at or after the group's start (the group's first row, if the group has any): a
        # needle at or below it ends at group_start, no search needed (often: a user who never clicked the
        # candidate's item, a time before the user's first event).
        n = len(self.sorted_key)
        first_key = self.sorted_key[np.minimum(group_start, n - 1)] if n else np.zeros(len(base), dtype=np.int64)
        before_first = ~known | (group_start == n)
        ends: list[np.ndarray] = []
        first_needle = None
        for rank in ranks_of_times:
            needle = base + rank
            end = group_start.copy()
            trivial = before_first | (needle <= first_key)
            if first_needle is not None:  # the same needle as the first time array: the same end
                same = ~trivial & (needle == first_needle)
                end[same] = ends[0][same]
                trivial |= same
            todo = searched[~trivial[searched]]  # still in group order
            end[todo] = np.searchsorted(self.sorted_key, needle[todo], side="left")
            end[~known] = 0
            ends.append(end)
            if first_needle is None:
                first_needle = needle
        return AsOfBounds(order=self.order, group_start=group_start, ends=ends)


def _distinct(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(values)`` (U,) and each value's index in it (N,) int64 (its ``searchsorted`` rank): one sort,
    or none when ``values`` is sorted already (the user column of a bucket's events)."""
    if len(values) > 1 and np.all(values[1:] >= values[:-1]):
        change = np.empty(len(values), dtype=bool)
        change[0] = True
        np.not_equal(values[1:], values[:-1], out=change[1:])
        return values[change], np.cumsum(change, dtype=np.int64) - 1
    unique, inverse = np.unique(values, return_inverse=True)
    return unique, inverse.astype(np.int64, copy=False).reshape(-1)


def _search(haystack: np.ndarray, needles: np.ndarray, order: np.ndarray | None = None) -> np.ndarray:
    """``np.searchsorted(haystack, needles, side="left")``, with the needles searched in sorted order (or in the
    given ``order``, one that keeps them nearly sorted): consecutive binary searches then touch nearby memory
    (several times faster on large histories)."""
    order = np.argsort(needles) if order is None else order
    found = np.empty(len(needles), dtype=np.int64)
    found[order] = np.searchsorted(haystack, needles[order], side="left")
    return found


def asof_bounds(
    hist_keys: Sequence[np.ndarray],
    hist_time: np.ndarray,
    query_keys: Sequence[np.ndarray],
    query_times: Sequence[np.ndarray],
) -> AsOfBounds:
    """Locate every query's history rows strictly before each of its query times (one-off index).

    Parameters
    ----------
    hist_keys, hist_time :
        As ``AsOfIndex``.
    query_keys : sequence of np.ndarray[int64], shape (Q,) each
        The same group columns for the queries.
    query_times : sequence of np.ndarray[int64], shape (Q,) each
        One or more time arrays (e.g. ``t``, ``t - 1 day``); bounds are returned for each.
    """
    if len(hist_keys) != len(query_keys):
        raise ValueError(f"{len(hist_keys)} history key columns but {len(query_keys)} query key columns")
    return AsOfIndex(hist_keys, hist_time).bounds(query_keys, query_times)


def gather_ranges(order: np.ndarray, start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate the slices ``order[start[i]:end[i]]`` without a Python loop.

    Returns
    -------
    rows : np.ndarray[int64], shape (L,)
        History row indices, query after query.
    offsets : np.ndarray[int64], shape (Q + 1,)
        Query ``i`` owns ``rows[offsets[i]:offsets[i + 1]]``.
    """
    lengths = np.maximum(end - start, 0)
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    positions = np.repeat(start - offsets[:-1], lengths) + np.arange(offsets[-1], dtype=np.int64)
    return order[positions], offsets


def unique_queries(*columns: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Distinct rows of ``columns`` and, for each input row, the index of its distinct row.

    Many ranking rows share a query (all candidates of one request share ``(user, time)``); the
    lookups run once per distinct query and are broadcast back with the returned inverse.
    """
    ranks, n_unique = dense_rank(*columns)
    first = np.zeros(n_unique, dtype=np.int64)
    first[ranks] = np.arange(len(ranks))  # any representative row will do: they are equal
    return [column[first] for column in columns], ranks
