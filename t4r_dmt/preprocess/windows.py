"""Time windows: ``floor(request time)`` by a fixed pandas frequency, numbered 1..W."""

from __future__ import annotations

import numpy as np
import pandas as pd


def window_delta(window: str) -> pd.Timedelta:
    """The length of a window alias (``1h``, ``1d``, ``7d`` ...); ValueError if it is not fixed.

    Calendar frequencies (``1M``, ``W-MON`` ...) are refused: windows must all have one length so that
    ``floor`` gives consecutive numbers.
    """
    try:
        offset = pd.tseries.frequencies.to_offset(window)
        delta = pd.Timedelta(offset)
    except (ValueError, TypeError) as err:
        raise ValueError(
            f"window {window!r} is not a fixed pandas frequency (e.g. '1h', '1d', '7d')"
        ) from err
    if delta <= pd.Timedelta(0):
        raise ValueError(f"window {window!r} must be a positive duration")
    return delta


def assign_windows(times_ns: np.ndarray, window: str) -> tuple[np.ndarray, pd.DatetimeIndex]:
    """Window number of each time.

    Parameters
    ----------
    times_ns : np.ndarray[int64], shape (N,)
        Times as nanoseconds since the epoch (UTC).
    window : str
        Fixed pandas frequency.

    Returns
    -------
    numbers : np.ndarray[int64], shape (N,)
        1 for the window of the earliest time, consecutive after it (empty windows keep their number).
    starts : pd.DatetimeIndex, shape (W,)
        Start time of windows 1..W.
    """
    delta = window_delta(window)
    if len(times_ns) == 0:
        return np.zeros(0, dtype=np.int64), pd.DatetimeIndex([])
    floored = pd.DatetimeIndex(np.asarray(times_ns, dtype=np.int64).view("datetime64[ns]")).floor(window)
    first = floored.min()
    numbers = ((floored - first) // delta).to_numpy().astype(np.int64) + 1
    starts = pd.date_range(first, periods=int(numbers.max()), freq=delta)
    return numbers, starts
