"""The time-window protocol, defined once: "train on window t, evaluate on window t+1".

Four parts, used by preprocessing (which writes the windows), the T4R training loop, the GBDT baseline and
the session baselines (which all walk them through :func:`run_windows`):

* **the grid**: a fixed-length pandas alias (``1h``, ``1d``, ``7d``); a time belongs to the window of its
  floor, windows are aligned to multiples of their length since the Unix epoch (``1d``: midnight UTC) and
  numbered 1..W from the window of the earliest time (empty windows keep their number);
* **the folder layout**: ``TASK_DIR/NNNN/{train,valid,test}.parquet``;
* **the valid/test split**: each window's ``train.parquet`` holds every row; ``valid`` and ``test`` split its
  requests (ranking) or sessions (next item) about 50:50 by a seeded hash of the id (the T4R paper's protocol);
* **the walk**: for each pair of consecutive selected windows, fit on t, then evaluate on t+1.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

logger = logging.getLogger(__name__)

#: The three files of every window folder; ``train`` holds every row, ``valid`` + ``test`` partition them.
SPLITS: tuple[str, ...] = ("train", "valid", "test")
#: Files of window t+1 a run may evaluate on.
EVAL_SPLITS: tuple[str, ...] = ("valid", "test", "train")
#: Window folders are named with 4 digits.
MAX_WINDOWS = 9999

_WINDOW_DIR = re.compile(r"^\d{4}$")
_GOLDEN = 0x9E3779B97F4A7C15  # 2**64 / golden ratio: spreads consecutive seeds over the hash's bits


# --- the grid ------------------------------------------------------------------------------------------

def window_delta(window: str) -> pd.Timedelta:
    """The length of a window alias (``1h``, ``1d``, ``7d`` ...); ValueError unless it is a fixed positive length.

    Calendar offsets (``1W``, ``1M``) are refused: their length varies, so "floor to the window" is undefined.
    """
    try:
        offset = pd.tseries.frequencies.to_offset(window)
    except (TypeError, ValueError) as err:
        raise ValueError(f"window {window!r} is not a pandas offset alias such as '1d', '6h' or '7d'") from err
    if not isinstance(offset, pd.offsets.Tick):
        raise ValueError(f"window {window!r} must be a fixed length such as '1d', '12h' or '30min' "
                         f"(calendar offsets like weeks and months vary in length)")
    delta = pd.Timedelta(offset)
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
    first = first_window_start(times_ns, window)
    numbers = window_numbers(times_ns, window, first)
    starts = pd.date_range(first, periods=int(numbers.max()), freq=window_delta(window))
    return numbers, starts


def first_window_start(times_ns: np.ndarray, window: str) -> pd.Timestamp:
    """Start of window 1: the floor of the earliest of ``times_ns`` ((N,) int64 ns, N >= 1)."""
    return _floor(times_ns, window).min()


def window_numbers(times_ns: np.ndarray, window: str, first_start: pd.Timestamp) -> np.ndarray:
    """Window number of each time on the grid whose window 1 starts at ``first_start``, shape (N,).

    Times before ``first_start`` get numbers < 1; the callers decide what those mean.
    """
    floored = _floor(times_ns, window)
    return ((floored - first_start) // window_delta(window)).to_numpy().astype(np.int64) + 1


def _floor(times_ns: np.ndarray, window: str) -> pd.DatetimeIndex:
    window_delta(window)  # a clear error for a bad alias before pandas raises its own
    return pd.DatetimeIndex(np.asarray(times_ns, dtype=np.int64).view("datetime64[ns]")).floor(window)


# --- the valid / test split ---------------------------------------------------------------------------

def valid_half(ids: np.ndarray, seed: int = 0) -> np.ndarray:
    """Which requests (or sessions) go to ``valid``; the rest go to ``test``: a seeded hash, about 50:50.

    One definition for both tasks. Ranking rows are split by ``request_id`` (every impression of a list stays
    on one side, so list metrics such as NDCG see whole lists) with seed 0; session rows by ``session_id`` with
    the configured ``split_seed``. The hash is pandas' stable ``hash_array`` (the same in every process and
    on every machine), so a split never depends on the row order or the number of workers.

    Integer ids are hashed as int64 XOR the seed mix; text ids (a log's raw ``request_id`` may be text) are
    first hashed from their UTF-8 text to a uint64 key, which then goes through the same seeded hash.

    Parameters
    ----------
    ids:
        ``(S,)`` request or session ids: integers, or text (an object array of str).
    seed:
        Non-negative int; the same ids and seed always give the same split (seed 0 hashes the ids as they are).

    Returns
    -------
    ``(S,)`` bool, True for valid.
    """
    if seed < 0:
        raise ValueError(f"split seed must be >= 0, got {seed}")
    mix = np.uint64((seed * _GOLDEN) % (1 << 64))
    values = np.asarray(ids)
    if values.dtype.kind in "iub":
        keys = values.astype(np.int64, copy=False).view(np.uint64)
    elif values.dtype.kind in "OUS":
        keys = pd.util.hash_array(values.astype(object))  # the text's UTF-8 bytes: stable across processes
    else:
        raise TypeError(f"ids must be integers or text, got dtype {values.dtype}")
    hashed = pd.util.hash_array(keys ^ mix)
    return (hashed & np.uint64(1)) == 0


# --- the folder layout ----------------------------------------------------------------------------------

def window_dir(task_dir: Path, window: int) -> Path:
    """``<task_dir>/<window:04d>``."""
    if not 1 <= window <= MAX_WINDOWS:
        raise ValueError(f"window {window} is outside 1..{MAX_WINDOWS}")
    return Path(task_dir) / f"{window:04d}"


def list_windows(task_dir: Path) -> list[int]:
    """Return the window numbers found under ``task_dir`` (folders named with 4 digits), sorted."""
    task_dir = Path(task_dir)
    if not task_dir.is_dir():
        raise FileNotFoundError(f"{task_dir} does not exist: run `t4r-dmt preprocess` first")
    windows = sorted(int(p.name) for p in task_dir.iterdir() if p.is_dir() and _WINDOW_DIR.match(p.name))
    if len(windows) < 2:
        raise ValueError(f"{task_dir} holds {len(windows)} window folder(s); the loop needs at least 2")
    return windows


def window_path(task_dir: Path, window: int, split: str) -> Path:
    """Path of ``<task_dir>/<window:04d>/<split>.parquet``; raises if it is missing."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    path = window_dir(task_dir, window) / f"{split}.parquet"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing")
    return path


def n_rows(path: Path) -> int:
    """Rows of a parquet file, from its footer (no data read)."""
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(path).metadata.num_rows)


def parse_windows(text: str) -> tuple[int, int]:
    """Parse ``"A:B"`` into ``(A, B)`` with ``1 <= A < B``."""
    parts = text.split(":")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise ValueError(f"--windows must look like A:B (e.g. 1:4), got {text!r}")
    first, last = int(parts[0]), int(parts[1])
    if not 1 <= first < last:
        raise ValueError(f"--windows A:B needs 1 <= A < B (train on A..B-1, evaluate on A+1..B), got {text!r}")
    return first, last


def select_windows(available: list[int], spec: str) -> list[int]:
    """The windows A..B (inclusive) of ``spec`` (``"A:B"``), or all when ``spec`` is empty.

    The loop trains on every selected window but the last and evaluates on every one but the first.
    """
    if not spec:
        return available
    first, last = parse_windows(spec)
    missing = [w for w in range(first, last + 1) if w not in available]
    if missing:
        raise ValueError(f"--windows {spec}: window(s) {missing} not found (available: {available})")
    return list(range(first, last + 1))


# --- the walk -------------------------------------------------------------------------------------------

Record = dict[str, Any]


def run_windows(
    windows: Sequence[int],
    fit: Callable[[int], Record | None],
    evaluate: Callable[[int, int], tuple[int, dict[str, float]]],
    done: Sequence[Record] = (),
    on_window_end: Callable[[list[Record]], None] | None = None,
    name: str = "model",
) -> list[Record]:
    """Train on t, evaluate on t+1, for each pair of consecutive ``windows``.

    Parameters
    ----------
    windows:
        The selected window numbers, ascending (:func:`select_windows`).
    fit:
        ``fit(t)`` adds window t's training data to the model (continues from the weights of t-1, refits on
        windows <= t, ... as the model's protocol says); it may return facts of its training to record with the
        window (the T4R loop's chosen ``epochs``), or None.
    evaluate:
        ``evaluate(t, t + 1) -> (rows, metrics)``: scores the evaluation file of window t+1 with the model of t.
    done:
        Records of windows finished by an earlier run (``--resume``): their training windows are skipped;
        the caller restores the model state they left.
    on_window_end:
        Called with every record so far after each window (writes ``metrics.json`` as the run goes).
    name:
        Shown in the progress bar and the log.

    Returns
    -------
    ``done`` followed by one record per new window: ``{"train_window", "eval_window", "n_rows", **facts,
    **metrics}``.
    """
    records = list(done)
    finished = {int(r["train_window"]) for r in records}
    pairs = [(t, e) for t, e in zip(windows[:-1], windows[1:], strict=True) if t not in finished]
    for train_window, eval_window in tqdm(pairs, desc=f"{name} windows", disable=None):
        facts = fit(train_window) or {}
        rows, metrics = evaluate(train_window, eval_window)
        records.append({"train_window": train_window, "eval_window": eval_window, "n_rows": int(rows), **facts,
                        **metrics})
        logger.info("%s: window %d -> %d: %s", name, train_window, eval_window,
                    ", ".join(f"{k}={v:.4f}" for k, v in metrics.items() if isinstance(v, float)))
        if on_window_end is not None:
            on_window_end(records)
    return records
