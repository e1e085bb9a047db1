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
    rate_delay:
        Impressions count towards an item's CTR once their hour ended at least this long before the
        request (pandas offset alias): the time a click label needs to be known.
    ctr_position_debias:
        The item CTR counts clicks over expected clicks given the positions shown (COEC), not over
        impressions: a logging policy that keeps items at the top does not inflate their rate. Needs an
        impression log with positions.
    interaction_decay:
        Time constant tau (pandas offset alias) of the decayed match counts ``{b}_{a}_decayed``.
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
    rate_delay: str = "1h"
    ctr_position_debias: bool = False
    interaction_decay: str = "1d"
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
        if self.rate_delay_ns < 0:
            raise ValueError(f"rate_delay must be >= 0, got {self.rate_delay!r}")
        if self.interaction_decay_ns <= 0:
            raise ValueError(f"interaction_decay must be > 0, got {self.interaction_decay!r}")
        if self.events_per_bucket < 1:
            raise ValueError(f"events_per_bucket must be >= 1, got {self.events_per_bucket}")

    @property
    def rate_delay_ns(self) -> int:
        return _duration_ns("rate_delay", self.rate_delay)

    @property
    def interaction_decay_ns(self) -> int:
        return _duration_ns("interaction_decay", self.interaction_decay)

    @property
    def seq_lengths(self) -> dict[str, int]:
        """N per behaviour: ``{"click": 50, "cart": 10, "order": 10}`` by default."""
        return {"click": self.click_length, "cart": self.cart_length, "order": self.order_length}


def _duration_ns(name: str, alias: str) -> int:
    try:
        return int(pd.Timedelta(alias).value)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{name} must be a duration such as '1h' or '1d', got {alias!r}") from err
