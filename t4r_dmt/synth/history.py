"""Per-user event history and the "most recent events strictly before time t" lookup, vectorised.

The click truth must depend only on what happened *before* a request, so every lookup here is a
``searchsorted(..., side="left")`` on (user, time) keys: an event at exactly the request's second is
not part of that request's history.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# user * _STRIDE + time orders events by (user, time); times stay far below it (<= 1000 days + slack).
_STRIDE = np.int64(10**9)


@dataclass(frozen=True)
class Recent:
    """The ``depth`` latest events before each query: arrays (Q, depth), column 0 the most recent.

    item / category are -1 where the user had fewer than ``depth`` earlier events; ``valid`` marks
    the real entries.
    """

    item: np.ndarray
    category: np.ndarray
    valid: np.ndarray


@dataclass(frozen=True)
class History:
    """Events of one kind sorted by (user, time): key, item, category arrays of shape (N,)."""

    key: np.ndarray
    user: np.ndarray
    item: np.ndarray
    category: np.ndarray

    @classmethod
    def build(cls, user: np.ndarray, time: np.ndarray, item: np.ndarray, category: np.ndarray) -> History:
        """Index events given as (N,) arrays of user index, time (s), item index and category index."""
        key = user.astype(np.int64) * _STRIDE + time.astype(np.int64)
        order = np.argsort(key, kind="stable")
        return cls(key=key[order], user=user[order], item=item[order], category=category[order])

    def recent(self, user: np.ndarray, time: np.ndarray, depth: int) -> Recent:
        """The ``depth`` latest events of each ``user[q]`` strictly before ``time[q]``: (Q,), (Q,) -> Recent."""
        end = np.searchsorted(self.key, user.astype(np.int64) * _STRIDE + time.astype(np.int64), side="left")
        idx = end[:, None] - 1 - np.arange(depth)[None, :]
        safe = np.clip(idx, 0, max(len(self.key) - 1, 0))
        if len(self.key) == 0:
            valid = np.zeros(idx.shape, dtype=bool)
            missing = np.full(idx.shape, -1, dtype=np.int64)
            return Recent(item=missing, category=missing.copy(), valid=valid)
        valid = (idx >= 0) & (self.user[safe] == user[:, None])
        return Recent(item=np.where(valid, self.item[safe], -1), category=np.where(valid, self.category[safe], -1),
                      valid=valid)
