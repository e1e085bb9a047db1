"""Window-level ranking metrics: computed once over a whole evaluation window, never averaged per batch.

Every function takes flat arrays of length N (one entry per impression) concatenated over the window.
Per-group work (per user for GAUC, per request for NDCG and recall) is vectorised: rows are sorted once
by (group, score) and groups are reduced with ``np.bincount``; there is no Python loop over groups.

Conventions
-----------
* Ties in the score are handled as the *expected value over a uniformly random order of the tied
  items*: AUC and GAUC give half credit to a tied (positive, negative) pair (Mann-Whitney with average
  ranks, as ``sklearn.metrics.roc_auc_score``); NDCG and recall spread the gain of a tie group evenly
  over the ranks it occupies (as ``sklearn.metrics.ndcg_score(ignore_ties=False)``). The result does not
  depend on the row order, and a constant scorer earns no credit from the order in which the log lists
  the items (which would otherwise leak the production ranking into the metric).
* NDCG uses linear gains (gain = relevance) and the discount ``1 / log2(rank + 1)`` for 1-based ranks.
  ``ranking_metrics`` uses graded relevance ``click + order``: 0 not clicked, 1 clicked, 2 ordered.
* Recall@K counts an item as relevant when its relevance is > 0 (i.e. clicked).
* NDCG@K and recall@K are computed per request, then averaged with equal weight over the requests that
  hold at least one relevant item; requests without one are skipped. K larger than a list is fine.
* A metric that is undefined on its input (one class only, no user or request with both classes or a
  relevant item, empty input) is NaN, so that one odd window does not stop a training run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

__all__ = ["auc", "gauc", "logloss", "ndcg_at_k", "ranking_metrics", "recall_at_k", "RANKING_FRAME_COLUMNS"]

RANKING_FRAME_COLUMNS: tuple[str, ...] = ("request_id", "user_id", "click", "order", "p_click", "p_order",
                                          "score")


# --------------------------------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------------------------------
def _as_1d(name: str, values: object) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {array.shape}")
    return array


def _check_lengths(**arrays: np.ndarray) -> None:
    lengths = {name: len(array) for name, array in arrays.items()}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{name}={n}" for name, n in lengths.items())
        raise ValueError(f"length mismatch: {listed}")


def _binary(name: str, values: object) -> np.ndarray:
    array = _as_1d(name, values)
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric 0/1 labels, got dtype {array.dtype}")
    bad = ~np.isin(array, (0, 1))
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name} must be binary 0/1, got {array[first]!r} at index {first}")
    return array.astype(np.int64)


def _finite(name: str, values: object) -> np.ndarray:
    array = _as_1d(name, values)
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric, got dtype {array.dtype}")
    array = array.astype(np.float64)
    bad = ~np.isfinite(array)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name} must be finite, got {array[first]!r} at index {first}")
    return array


def _probabilities(name: str, values: object) -> np.ndarray:
    array = _finite(name, values)
    bad = (array < 0.0) | (array > 1.0)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name} must be probabilities in [0, 1], got {array[first]!r} at index {first}")
    return array


def _relevance(name: str, values: object) -> np.ndarray:
    array = _finite(name, values)
    bad = array < 0.0
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name} must be >= 0, got {array[first]!r} at index {first}")
    return array


def _check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    return int(k)


# --------------------------------------------------------------------------------------------------
# Sorting by (group, score) once, with tie groups
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _TieGroups:
    """Rows sorted by (group, score), and the runs of equal scores ("tie groups") inside each group.

    Attributes (N rows, G groups, T tie groups)
    ----------
    order: (N,) permutation that sorts the rows.
    groups: (N,) group code of each sorted row, in 0..G-1.
    tie_of_row: (N,) tie group of each sorted row, in 0..T-1.
    tie_start: (T,) 0-based rank, within its group, of the first row of each tie group.
    tie_size: (T,) rows in each tie group.
    tie_group: (T,) group code of each tie group.
    n_groups: G.
    """

    order: np.ndarray
    groups: np.ndarray
    tie_of_row: np.ndarray
    tie_start: np.ndarray
    tie_size: np.ndarray
    tie_group: np.ndarray
    n_groups: int


def _group_codes(name: str, ids: np.ndarray) -> tuple[np.ndarray, int]:
    """(N,) dense codes 0..G-1 of any hashable ids, and G; nulls are an error."""
    codes, uniques = pd.factorize(ids, sort=False)
    if (codes < 0).any():
        first = int(np.flatnonzero(codes < 0)[0])
        raise ValueError(f"{name} must not hold nulls, got {ids[first]!r} at index {first}")
    return codes, len(uniques)


def _tie_groups(codes: np.ndarray, n_groups: int, scores: np.ndarray, descending: bool) -> _TieGroups:
    order = np.lexsort((-scores if descending else scores, codes))
    groups = codes[order]
    sorted_scores = scores[order]
    n = len(order)
    new_group = np.ones(n, dtype=bool)
    new_group[1:] = groups[1:] != groups[:-1]
    new_tie = new_group.copy()
    new_tie[1:] |= sorted_scores[1:] != sorted_scores[:-1]
    group_first_row = np.flatnonzero(new_group)
    rank_in_group = np.arange(n) - group_first_row[np.cumsum(new_group) - 1]
    tie_first_row = np.flatnonzero(new_tie)
    return _TieGroups(
        order=order,
        groups=groups,
        tie_of_row=np.cumsum(new_tie) - 1,
        tie_start=rank_in_group[tie_first_row],
        tie_size=np.diff(np.append(tie_first_row, n)),
        tie_group=groups[tie_first_row],
        n_groups=n_groups,
    )


def _rank_within_group(codes: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sort rows by (group, value descending); return (order, group codes, 0-based rank in group)."""
    order = np.lexsort((-values, codes))
    groups = codes[order]
    new_group = np.ones(len(order), dtype=bool)
    new_group[1:] = groups[1:] != groups[:-1]
    first = np.flatnonzero(new_group)
    return order, groups, np.arange(len(order)) - first[np.cumsum(new_group) - 1]


# --------------------------------------------------------------------------------------------------
# Binary classification metrics
# --------------------------------------------------------------------------------------------------
def auc(labels: object, scores: object) -> float:
    """ROC AUC over the whole window.

    Parameters
    ----------
    labels: (N,) 0/1 labels.
    scores: (N,) scores or probabilities (any finite real; only their order matters).

    Returns
    -------
    float: the AUC (ties count one half), NaN if ``labels`` holds one class only (or is empty).
    """
    y = _binary("labels", labels)
    s = _finite("scores", scores)
    _check_lengths(labels=y, scores=s)
    if len(np.unique(y)) < 2:
        return float("nan")
    return float(roc_auc_score(y, s))


def gauc(labels: object, scores: object, user_ids: object) -> float:
    """Group AUC (DIN paper, Zhou et al. 2018): per-user AUC, averaged with impression weights.

    ``GAUC = sum_u n_u * AUC_u / sum_u n_u`` over the users ``u`` having both a positive and a negative
    impression, where ``n_u`` is the user's number of impressions. Each ``AUC_u`` is the Mann-Whitney
    statistic with average ranks (ties count one half), computed for all users at once.

    Parameters
    ----------
    labels: (N,) 0/1 labels.
    scores: (N,) scores or probabilities.
    user_ids: (N,) user of each impression (any hashable dtype).

    Returns
    -------
    float: the GAUC, NaN if no user has both classes.
    """
    y = _binary("labels", labels)
    s = _finite("scores", scores)
    users = _as_1d("user_ids", user_ids)
    _check_lengths(labels=y, scores=s, user_ids=users)
    if len(y) == 0:
        return float("nan")
    ties = _tie_groups(*_group_codes("user_ids", users), s, descending=False)
    # Average 1-based rank of a tie group occupying ranks start+1 .. start+size.
    average_rank = ties.tie_start + (ties.tie_size + 1) / 2.0
    y_sorted = y[ties.order]
    n = np.bincount(ties.groups, minlength=ties.n_groups).astype(np.float64)
    n_pos = np.bincount(ties.groups, weights=y_sorted, minlength=ties.n_groups)
    n_neg = n - n_pos
    rank_sum = np.bincount(ties.groups, weights=average_rank[ties.tie_of_row] * y_sorted,
                           minlength=ties.n_groups)
    both = (n_pos > 0) & (n_neg > 0)
    if not both.any():
        return float("nan")
    per_user = (rank_sum[both] - n_pos[both] * (n_pos[both] + 1) / 2.0) / (n_pos[both] * n_neg[both])
    return float(np.sum(n[both] * per_user) / np.sum(n[both]))


def logloss(labels: object, probs: object, eps: float = 1e-7) -> float:
    """Mean binary cross-entropy, probabilities clipped to ``[eps, 1 - eps]``.

    Parameters
    ----------
    labels: (N,) 0/1 labels.
    probs: (N,) predicted probabilities of the positive class, in [0, 1].
    eps: clipping, so that a confident mistake costs ``-log(eps)`` instead of infinity.

    Returns
    -------
    float: the mean log loss (natural log), NaN on empty input.
    """
    y = _binary("labels", labels)
    p = _probabilities("probs", probs)
    _check_lengths(labels=y, probs=p)
    if not 0.0 < eps < 0.5:
        raise ValueError(f"eps must be in (0, 0.5), got {eps!r}")
    if len(y) == 0:
        return float("nan")
    p = np.clip(p, eps, 1.0 - eps)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


# --------------------------------------------------------------------------------------------------
# Per-request ranking metrics
# --------------------------------------------------------------------------------------------------
def _validate_ranking(relevance: object, scores: object, request_ids: object, k: int
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    rel = _relevance("relevance", relevance)
    s = _finite("scores", scores)
    requests = _as_1d("request_ids", request_ids)
    _check_lengths(relevance=rel, scores=s, request_ids=requests)
    return rel, s, requests, _check_k(k)


def _share_in_top_k(ties: _TieGroups, k: int) -> np.ndarray:
    """(T,) fraction of each tie group's ranks that fall in the top k of its group."""
    start = ties.tie_start
    inside = np.minimum(start + ties.tie_size, k) - np.minimum(start, k)
    return inside / ties.tie_size


def ndcg_at_k(relevance: object, scores: object, request_ids: object, k: int = 10) -> float:
    """NDCG@k of ``scores`` within each request, averaged over requests with a relevant item.

    Parameters
    ----------
    relevance: (N,) graded relevance >= 0 (the gain; e.g. click + order).
    scores: (N,) ranking score, higher ranks first.
    request_ids: (N,) request of each row.
    k: cut-off (>= 1); lists shorter than k are scored over their full length.

    Returns
    -------
    float: mean NDCG@k, NaN if no request holds a relevant item. Tied scores get the expected DCG over
    a random order of the tied items (module docstring).
    """
    rel, s, requests, k = _validate_ranking(relevance, scores, request_ids, k)
    if len(rel) == 0:
        return float("nan")
    discount = 1.0 / np.log2(np.arange(k) + 2.0)
    # cumulative[r] = total discount of ranks 0..r-1 (capped at k).
    cumulative = np.concatenate([[0.0], np.cumsum(discount)])

    codes, n_requests = _group_codes("request_ids", requests)
    ties = _tie_groups(codes, n_requests, s, descending=True)
    tie_gain = np.bincount(ties.tie_of_row, weights=rel[ties.order])
    start, stop = ties.tie_start, ties.tie_start + ties.tie_size
    tie_dcg = tie_gain / ties.tie_size * (cumulative[np.minimum(stop, k)] - cumulative[np.minimum(start, k)])
    dcg = np.bincount(ties.tie_group, weights=tie_dcg, minlength=ties.n_groups)

    order, groups, rank = _rank_within_group(codes, rel)
    top = rank < k
    ideal = np.bincount(groups[top], weights=rel[order][top] * discount[rank[top]], minlength=n_requests)
    has_relevant = ideal > 0
    if not has_relevant.any():
        return float("nan")
    return float(np.mean(dcg[has_relevant] / ideal[has_relevant]))


def recall_at_k(relevance: object, scores: object, request_ids: object, k: int = 10) -> float:
    """Recall@k within each request, averaged over requests with a relevant item.

    Parameters
    ----------
    relevance: (N,) relevance >= 0; an item is relevant when its relevance is > 0.
    scores: (N,) ranking score, higher ranks first.
    request_ids: (N,) request of each row.
    k: cut-off (>= 1); when k >= the list length recall is 1.

    Returns
    -------
    float: mean over requests of (relevant items in the top k) / (relevant items), NaN if no request
    holds a relevant item. Tied scores count the expected number of hits over a random order.
    """
    rel, s, requests, k = _validate_ranking(relevance, scores, request_ids, k)
    if len(rel) == 0:
        return float("nan")
    relevant = (rel > 0).astype(np.float64)
    ties = _tie_groups(*_group_codes("request_ids", requests), s, descending=True)
    tie_relevant = np.bincount(ties.tie_of_row, weights=relevant[ties.order])
    hits = np.bincount(ties.tie_group, weights=tie_relevant * _share_in_top_k(ties, k),
                       minlength=ties.n_groups)
    total = np.bincount(ties.groups, weights=relevant[ties.order], minlength=ties.n_groups)
    has_relevant = total > 0
    if not has_relevant.any():
        return float("nan")
    return float(np.mean(hits[has_relevant] / total[has_relevant]))


def ranking_metrics(frame: pd.DataFrame, k: int = 10) -> dict[str, float]:
    """Every ranking metric of the ``metrics.json`` contract over one evaluation window.

    Parameters
    ----------
    frame: one row per impression with columns ``request_id``, ``user_id``, ``click``, ``order`` (0/1
        labels), ``p_click``, ``p_order`` (predicted probabilities) and ``score`` (the ranking score).
    k: cut-off of NDCG and recall.

    Returns
    -------
    dict: ``auc_click``, ``auc_order``, ``gauc_click``, ``gauc_order`` (per user), ``logloss_click``,
    ``logloss_order``, ``ndcg@k`` (graded relevance click + order) and ``recall@k`` (relevant = clicked),
    both on ``score`` within each request.
    """
    missing = [column for column in RANKING_FRAME_COLUMNS if column not in frame.columns]
    if missing:
        raise ValueError(f"ranking_metrics: frame lacks column(s) {missing}; it needs {list(RANKING_FRAME_COLUMNS)}")
    click = _binary("click", frame["click"].to_numpy())
    order = _binary("order", frame["order"].to_numpy())
    p_click = _probabilities("p_click", frame["p_click"].to_numpy())
    p_order = _probabilities("p_order", frame["p_order"].to_numpy())
    users = frame["user_id"].to_numpy()
    requests = frame["request_id"].to_numpy()
    score = frame["score"].to_numpy()
    return {
        "auc_click": auc(click, p_click),
        "auc_order": auc(order, p_order),
        "gauc_click": gauc(click, p_click, users),
        "gauc_order": gauc(order, p_order, users),
        "logloss_click": logloss(click, p_click),
        "logloss_order": logloss(order, p_order),
        f"ndcg@{k}": ndcg_at_k(click + order, score, requests, k),
        f"recall@{k}": recall_at_k(click, score, requests, k),
    }
