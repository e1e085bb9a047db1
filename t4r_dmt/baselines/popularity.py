"""Most-popular baseline: every session gets the same ranking, by interaction counts in the training windows."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from t4r_dmt.baselines.sessions import SessionBatch


@dataclass
class PopularityConfig:
    """Settings of :class:`Popularity`.

    Parameters
    ----------
    last_windows:
        Count the interactions of the most recent ``last_windows`` training windows only; 0 counts all
        windows seen so far (the protocol's "history = all windows <= t").
    """

    last_windows: int = 0

    def __post_init__(self) -> None:
        if self.last_windows < 0:
            raise ValueError(f"last_windows must be >= 0 (0 = all windows), got {self.last_windows}")


class Popularity:
    """Scores each item by how often it occurs in the training sessions (repeats inside a session count).

    Parameters
    ----------
    n_items:
        Catalogue size ``V``: item codes ``0 .. V-1``.
    config:
        :class:`PopularityConfig`.
    """

    name = "popularity"

    def __init__(self, n_items: int, config: PopularityConfig | None = None) -> None:
        if n_items < 1:
            raise ValueError(f"n_items must be >= 1, got {n_items}")
        self.n_items = n_items
        self.config = config or PopularityConfig()
        self._windows: deque[np.ndarray] = deque(maxlen=self.config.last_windows or None)

    def fit(self, sessions: SessionBatch) -> None:
        """Add one training window."""
        if sessions.items.size and sessions.items.max() >= self.n_items:
            raise ValueError(f"item code {int(sessions.items.max())} is outside the catalogue of "
                             f"{self.n_items} items")
        self._windows.append(np.bincount(sessions.items, minlength=self.n_items).astype(np.float64))

    def score(self, histories: list[np.ndarray]) -> np.ndarray:
        """``(B, V)`` scores of the next item for each of the ``B`` session prefixes (all rows equal)."""
        counts = np.sum(self._windows, axis=0) if self._windows else np.zeros(self.n_items)
        return np.tile(counts, (len(histories), 1))
