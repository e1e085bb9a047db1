"""Vectorised as-of lookups: "the history rows of this group strictly before this time".

Every ranking feature that looks into the past (behaviour sequences, windowed counts, user-item counts,
candidate attributes, item rates from earlier windows) reduces to one question, answered here for all
queries at once: for a query ``(group keys, t)``, which history rows share the group and have
``time < t``? History rows are sorted by ``(group, time)``; a query then owns the contiguous slice
``order[group_start:end]`` where ``end`` is ``searchsorted(..., side="left")`` of ``(group, t)``, so
a history row logged at exactly ``t`` (e.g. the click that *is* the label) is never included.

Multi-column keys are turned into one sortable int64 key: the dense rank of the group times
``(number of distinct times + 1)`` plus the dense rank of the time. No Python loop runs per row.
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


def asof_bounds(
    hist_keys: Sequence[np.ndarray],
    hist_time: np.ndarray,
    query_keys: Sequence[np.ndarray],
    query_times: Sequence[np.ndarray],
) -> AsOfBounds:
    """Locate every query's history rows strictly before each of its query times.

    Parameters
    ----------
    hist_keys : sequence of np.ndarray[int64], shape (H,) each
        Group columns of the history (e.g. ``[user_id]`` or ``[user_id, product_id]``).
    hist_time : np.ndarray[int64], shape (H,)
        History times (any monotone unit, e.g. nanoseconds or window numbers).
    query_keys : sequence of np.ndarray[int64], shape (Q,) each
        The same group columns for the queries.
    query_times : sequence of np.ndarray[int64], shape (Q,) each
        One or more time arrays (e.g. ``t``, ``t - 1 day``); bounds are returned for each.
    """
    if len(hist_keys) != len(query_keys):
        raise ValueError(f"{len(hist_keys)} history key columns but {len(query_keys)} query key columns")
    if not query_times:
        raise ValueError("asof_bounds needs at least one query-time array")
    n_hist = len(hist_time)
    n_query = len(query_times[0])
    group, _ = dense_rank(*[np.concatenate([h, q]) for h, q in zip(hist_keys, query_keys, strict=True)])
    time_rank, n_times = dense_rank(np.concatenate([hist_time, *query_times]))
    stride = np.int64(n_times + 1)
    hist_key = group[:n_hist] * stride + time_rank[:n_hist]
    order = np.argsort(hist_key, kind="stable")
    sorted_key = hist_key[order]
    query_group = group[n_hist:] * stride
    group_start = np.searchsorted(sorted_key, query_group, side="left")
    ends = []
    for i in range(len(query_times)):
        lo = n_hist + i * n_query
        ends.append(np.searchsorted(sorted_key, query_group + time_rank[lo : lo + n_query], side="left"))
    return AsOfBounds(order=order, group_start=group_start, ends=ends)


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
