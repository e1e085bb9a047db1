"""The ranking-preprocessing configuration: one validated dataclass, the single source of truth.

Behaviours and their event types (DESIGN.md): ``view`` -> **click**, ``cart`` -> **cart**,
``purchase`` -> **order**. ``remove_from_cart`` events feed no sequence and no count (they are
counted in ``stats.json`` as unused).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from t4r_dmt.windows import window_delta

#: look-back horizons of the user's windowed event counts
COUNT_HORIZONS: dict[str, pd.Timedelta] = {
    "1d": pd.Timedelta(days=1),
    "7d": pd.Timedelta(days=7),
    "30d": pd.Timedelta(days=30),
}


@dataclass
class RankingConfig:
    """How ranking rows are built.

    Parameters
    ----------
    window:
        Pandas offset alias of a time window (``1h``, ``1d``, ``7d`` ...); a request belongs to the
        window ``floor(request time)``; windows are numbered 1..W from the first one.
    fit_windows:
        Vocabularies and normalisation statistics are fitted on windows ``1..fit_windows`` only.
    click_length, cart_length, order_length:
        N, the number of most recent events kept per behaviour sequence.
    freq_threshold:
        Categorify frequency threshold: values seen fewer times in the fit windows map to OOV (2).
    negatives:
        Sampled negatives per positive when there is no impression log.
    rate_smoothing:
        Pseudo-count ``a`` of the smoothed item CTR / CVR: ``(clicks + a * prior) / (imps + a)``.
    seed:
        Seed of the negative sampler.
    events_per_bucket:
        Users are hashed into buckets of about this many events; the as-of join loads one bucket at
        a time, which bounds memory.
    """

    window: str = "1d"
    fit_windows: int = 1
    click_length: int = 50
    cart_length: int = 10
    order_length: int = 10
    freq_threshold: int = 0
    negatives: int = 4
    rate_smoothing: float = 20.0
    seed: int = 0
    events_per_bucket: int = 1_000_000

    def __post_init__(self) -> None:
        window_delta(self.window)  # raises ValueError on a bad alias
        if self.fit_windows < 1:
            raise ValueError(f"fit_windows must be >= 1, got {self.fit_windows}")
        for name, length in self.seq_lengths.items():
            if length < 1:
                raise ValueError(f"{name}_length must be >= 1, got {length}")
        if self.freq_threshold < 0:
            raise ValueError(f"freq_threshold must be >= 0, got {self.freq_threshold}")
        if self.negatives < 1:
            raise ValueError(f"negatives must be >= 1, got {self.negatives}")
        if self.rate_smoothing <= 0:
            raise ValueError(f"rate_smoothing must be > 0, got {self.rate_smoothing}")
        if self.events_per_bucket < 1:
            raise ValueError(f"events_per_bucket must be >= 1, got {self.events_per_bucket}")

    @property
    def seq_lengths(self) -> dict[str, int]:
        """N per behaviour: ``{"click": 50, "cart": 10, "order": 10}`` by default."""
        return {"click": self.click_length, "cart": self.cart_length, "order": self.order_length}
