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
    if len(times_ns) == 0:
        return np.zeros(0, dtype=np.int64), pd.DatetimeIndex([])
    first = _floor(times_ns, window).min()
    numbers = window_numbers(times_ns, window, first)
    starts = pd.date_range(first, periods=int(numbers.max()), freq=window_delta(window))
    return numbers, starts


def window_numbers(times_ns: np.ndarray, window: str, first_start: pd.Timestamp) -> np.ndarray:
    """Window number of each time on the grid whose window 1 starts at ``first_start``, shape (N,).

    Times before ``first_start`` get numbers < 1; the callers decide what those mean.
    """
    floored = _floor(times_ns, window)
    return ((floored - first_start) // window_delta(window)).to_numpy().astype(np.int64) + 1


def _floor(times_ns: np.ndarray, window: str) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(np.asarray(times_ns, dtype=np.int64).view("datetime64[ns]")).floor(window)
