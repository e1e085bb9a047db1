"""Discovery of the preprocessed time-window folders (``0001/``, ``0002/`` ...)."""

from __future__ import annotations

import re
from pathlib import Path

from t4r_dmt.training.arguments import parse_windows

_WINDOW_DIR = re.compile(r"^\d{4}$")


def list_windows(task_dir: Path) -> list[int]:
    """Return the window numbers found under ``task_dir`` (folders named with 4 digits), sorted."""
    if not task_dir.is_dir():
        raise FileNotFoundError(f"{task_dir} does not exist: run `t4r-dmt preprocess` first")
    windows = sorted(int(p.name) for p in task_dir.iterdir() if p.is_dir() and _WINDOW_DIR.match(p.name))
    if len(windows) < 2:
        raise ValueError(f"{task_dir} holds {len(windows)} window folder(s); the loop needs at least 2")
    return windows


def window_path(task_dir: Path, window: int, split: str) -> Path:
    """Path of ``<task_dir>/<window:04d>/<split>.parquet``; raises if it is missing."""
    path = task_dir / f"{window:04d}" / f"{split}.parquet"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing")
    return path


def n_rows(path: Path) -> int:
    """Rows of a parquet file, from its footer (no data read)."""
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(path).metadata.num_rows)


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
