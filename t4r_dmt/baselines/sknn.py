"""V-SkNN: vector multiplication session-based kNN (Ludewig & Jannach, 2018), kept simple.

For a session prefix ``h = (h_1 .. h_n)`` (``h_n`` the most recent item):

1. Item weights. Each distinct item of ``h`` gets the weight of its most recent position, by recency
   ``r = n - p + 1`` (1 = the last item): ``same`` 1, ``linear`` ``max(0, 1 - 0.1 (r - 1))``, ``div``
   ``1 / r``, ``quadratic`` ``1 / r^2``, ``log`` ``1 / log2(r + 1)``; times ``1 + idf_weighting *
   idf(i)`` with ``idf(i) = log(S / df(i))`` over the ``S`` training sessions, ``df(i)`` of which
   contain ``i``.
2. Candidates: the training sessions (all fitted windows) that share an item with ``h``; when there
   are more than ``sample_size``, the ``sample_size`` most recent ones (by session start).
3. Similarity ``sim(h, c)`` = sum of the weights of the items of ``h`` that occur in ``c`` (the dot
   product of the weighted prefix vector with the binary vector of ``c``); the ``k`` most similar
   candidates are the neighbours (ties: the more recent first).
4. Score of item ``j`` = sum of ``sim(h, c)`` over the neighbours ``c`` that contain ``j``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from t4r_dmt.baselines.sessions import SessionBatch

WEIGHTINGS = ("same", "linear", "div", "quadratic", "log")


@dataclass
class SkNNConfig:
    """Settings of :class:`VSkNN` (the paper tuned k 50..1500, sample_size 500..10000).

    Parameters
    ----------
    k: neighbours per prediction.
    sample_size: most recent candidate sessions considered; 0 considers all.
    weighting: position weighting of the prefix items, one of ``WEIGHTINGS``.
    idf_weighting: weight of the item's inverse document frequency (0: none).
    """

    k: int = 500
    sample_size: int = 1000
    weighting: str = "div"
    idf_weighting: float = 1.0

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError(f"k must be >= 1, got {self.k}")
        if self.sample_size < 0:
            raise ValueError(f"sample_size must be >= 0 (0 = all sessions), got {self.sample_size}")
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {self.weighting!r}")
        if self.idf_weighting < 0:
            raise ValueError(f"idf_weighting must be >= 0, got {self.idf_weighting}")


def recency_weights(n: int, weighting: str) -> np.ndarray:
    """``(n,)`` weight of positions ``1 .. n`` of a prefix of length ``n`` (the last one has recency 1)."""
    recency = np.arange(n, 0, -1, dtype=np.float64)
    if weighting == "same":
        return np.ones(n)
    if weighting == "linear":
        return np.clip(1.0 - 0.1 * (recency - 1.0), 0.0, None)
    if weighting == "div":
        return 1.0 / recency
    if weighting == "quadratic":
        return 1.0 / recency**2
    if weighting == "log":
        return 1.0 / np.log2(recency + 1.0)
    raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")


class VSkNN:
    """Session-based kNN over every fitted training window (see the module docstring).

    Parameters
    ----------
    n_items:
        Catalogue size ``V``: item codes ``0 .. V-1``.
    config:
        :class:`SkNNConfig`.
    """

    name = "v-sknn"

    def __init__(self, n_items: int, config: SkNNConfig | None = None) -> None:
        if n_items < 1:
            raise ValueError(f"n_items must be >= 1, got {n_items}")
        self.n_items = n_items
        self.config = config or SkNNConfig()
        # Session -> its distinct items (CSR), sessions in fit order = start-time order.
        self._session_items = np.empty(0, dtype=np.int64)
        self._session_offsets = np.zeros(1, dtype=np.int64)
        # Item -> the sessions holding it, ascending (CSR), and the idf of each item.
        self._item_sessions = np.empty(0, dtype=np.int64)
        self._item_offsets = np.zeros(n_items + 1, dtype=np.int64)
        self._idf = np.zeros(n_items)

    @property
    def n_sessions(self) -> int:
        return len(self._session_offsets) - 1

    def fit(self, sessions: SessionBatch) -> None:
        """Add one training window (sessions in start-time order, as the session ETL writes them)."""
        if sessions.items.size and sessions.items.max() >= self.n_items:
            raise ValueError(f"item code {int(sessions.items.max())} is outside the catalogue of "
                             f"{self.n_items} items")
        n_new = sessions.n_sessions
        rank = np.empty(n_new, dtype=np.int64)
        rank[np.argsort(sessions.start_time, kind="stable")] = np.arange(n_new)
        session = rank[np.repeat(np.arange(n_new), np.diff(sessions.offsets))]
        order = np.lexsort((sessions.items, session))
        session, items = session[order], sessions.items[order]
        distinct = np.ones(len(items), dtype=bool)
        distinct[1:] = (session[1:] != session[:-1]) | (items[1:] != items[:-1])
        counts = np.bincount(session[distinct], minlength=n_new)
        self._session_items = np.concatenate([self._session_items, items[distinct]])
        self._session_offsets = np.concatenate([self._session_offsets,
                                                self._session_offsets[-1] + np.cumsum(counts)])
        session_of = np.repeat(np.arange(self.n_sessions), np.diff(self._session_offsets))
        by_item = np.argsort(self._session_items, kind="stable")  # stable: sessions stay ascending
        self._item_sessions = session_of[by_item]
        df = np.bincount(self._session_items, minlength=self.n_items)
        self._item_offsets = np.concatenate([[0], np.cumsum(df)]).astype(np.int64)
        with np.errstate(divide="ignore"):
            self._idf = np.where(df > 0, np.log(self.n_sessions / np.maximum(df, 1)), 0.0)

    def neighbours(self, history: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest training sessions of one prefix.

        Returns
        -------
        sessions:
            ``(K,)`` int64 session indices (fit order), most similar first, ``K <= k``.
        similarity:
            ``(K,)`` float64 ``sim(h, c)``.
        """
        history = np.asarray(history, dtype=np.int64)
        if history.size == 0 or self.n_sessions == 0:
            return np.empty(0, dtype=np.int64), np.empty(0)
        if history.min() < 0 or history.max() >= self.n_items:
            raise ValueError(f"history item codes must be in [0, {self.n_items}), got {history.tolist()}")
        weights = recency_weights(len(history), self.config.weighting)
        # Keep the most recent occurrence of each item: unique on the reversed prefix.
        items, first = np.unique(history[::-1], return_index=True)
        item_weight = weights[::-1][first] * (1.0 + self.config.idf_weighting * self._idf[items])
        starts, stops = self._item_offsets[items], self._item_offsets[items + 1]
        lengths = stops - starts
        if lengths.sum() == 0:
            return np.empty(0, dtype=np.int64), np.empty(0)
        candidates = np.concatenate([self._item_sessions[a:b] for a, b in zip(starts, stops, strict=True)])
        contribution = np.repeat(item_weight, lengths)
        sessions, inverse = np.unique(candidates, return_inverse=True)
        similarity = np.bincount(inverse, weights=contribution)
        if self.config.sample_size and len(sessions) > self.config.sample_size:
            recent = slice(len(sessions) - self.config.sample_size, None)  # sessions are ascending = by time
            sessions, similarity = sessions[recent], similarity[recent]
        order = np.lexsort((-sessions, -similarity))[: self.config.k]
        return sessions[order], similarity[order]

    def score(self, histories: list[np.ndarray]) -> np.ndarray:
        """``(B, V)`` next-item scores of ``B`` session prefixes."""
        scores = np.zeros((len(histories), self.n_items))
        for row, history in enumerate(histories):
            sessions, similarity = self.neighbours(history)
            if not len(sessions):
                continue
            starts, stops = self._session_offsets[sessions], self._session_offsets[sessions + 1]
            items = np.concatenate([self._session_items[a:b] for a, b in zip(starts, stops, strict=True)])
            scores[row] = np.bincount(items, weights=np.repeat(similarity, stops - starts),
                                      minlength=self.n_items)
        return scores
