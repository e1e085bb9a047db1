"""The incremental protocol for the non-neural baselines, identical to the T4R models' loop.

For each pair of consecutive selected windows ``(t, t+1)``: fit on ``t/train.parquet`` (added to the
windows fitted before, so the history is every selected window ``<= t``), then predict the last item
of each session of ``(t+1)/<eval_split>.parquet`` from the items before it, over the full catalogue,
and score the ranks with the same :func:`~t4r_dmt.metrics.next_item.metrics_from_ranks` as the
T4R models. The records have the layout of ``metrics.json`` windows.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from t4r_dmt.baselines.sessions import SessionBatch, read_sessions
from t4r_dmt.metrics.next_item import metrics_from_ranks, target_ranks
from t4r_dmt.windows import EVAL_SPLITS, list_windows, run_windows, select_windows, window_path

logger = logging.getLogger(__name__)


class SessionScorer(Protocol):
    """What a baseline provides: incremental ``fit`` per window and full-catalogue ``score``."""

    name: str

    def fit(self, sessions: SessionBatch) -> None:
        """Add one training window."""

    def score(self, histories: list[np.ndarray]) -> np.ndarray:
        """``(B, V)`` next-item scores of ``B`` session prefixes."""


def evaluate_scorer(scorer: SessionScorer, task_dir: Path, windows: str = "", eval_split: str = "test",
                    k: int = 20, batch_size: int = 512) -> list[dict[str, Any]]:
    """Run the incremental protocol over ``task_dir`` (``DIR/sessions``) and return the window records.

    Parameters
    ----------
    scorer:
        A fresh baseline (nothing fitted yet).
    task_dir:
        The session output folder, with ``0001/``, ``0002/`` ... window folders.
    windows:
        ``"A:B"`` or ``""`` for all windows, as ``t4r-dmt train --windows``.
    eval_split:
        ``valid`` or ``test`` (or ``train``) file of window ``t+1``.
    k:
        Metric cut-off.
    batch_size:
        Prefixes scored at once (memory: ``batch_size x V`` floats).

    Returns
    -------
    list of ``{"train_window", "eval_window", "n_rows", "ndcg@k", "recall@k", "mrr@k"}``.
    """
    if eval_split not in EVAL_SPLITS:
        raise ValueError(f"eval_split must be one of {EVAL_SPLITS}, got {eval_split!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    task_dir = Path(task_dir)
    selected = select_windows(list_windows(task_dir), windows)

    def fit(train_window: int) -> None:
        scorer.fit(read_sessions(window_path(task_dir, train_window, "train")))

    def evaluate(train_window: int, eval_window: int) -> tuple[int, dict[str, float]]:
        histories, targets = read_sessions(window_path(task_dir, eval_window, eval_split)).last_item_examples()
        ranks = [np.empty(0, dtype=np.int64)]
        for start in range(0, len(targets), batch_size):
            stop = start + batch_size
            scores = np.asarray(scorer.score(histories[start:stop]), dtype=np.float64)
            ranks.append(target_ranks(scores, targets[start:stop], k=k))
        return len(targets), metrics_from_ranks(np.concatenate(ranks), k=k)

    return run_windows(selected, fit, evaluate, name=scorer.name)
