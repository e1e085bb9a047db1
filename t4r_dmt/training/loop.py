"""The incremental time-window loop: train on window t, evaluate on window t+1, for every window.

This is the protocol of both papers (DMT trains daily and evaluates on the next day; Transformers4Rec's
incremental evaluation): the model of window t continues from the weights of window t-1, the learning-rate
schedule restarts each window, and the optimizer state is re-created each window, so a window's result
depends only on the incoming weights and the seed (which is what makes ``--resume`` exact).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from merlin.schema import Schema
from transformers import set_seed

from t4r_dmt.training.arguments import DataArguments, RunTrainingArguments
from t4r_dmt.training.windows import list_windows, n_rows, select_windows, window_path

logger = logging.getLogger(__name__)

RANKING_ID_COLUMNS = ["request_id", "user_id", "click", "order"]


def checkpoint_dir(run_dir: Path, window: int) -> Path:
    """Folder of the checkpoint written after training on ``window``."""
    return run_dir / "checkpoints" / f"window_{window:04d}"


def save_checkpoint(model: torch.nn.Module, run_dir: Path, window: int) -> Path:
    """Save the weights after training on ``window`` (atomically: a folder renamed into place)."""
    from t4r_dmt.io_utils import atomic_path

    folder = checkpoint_dir(run_dir, window)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / "model.pt") as tmp:
        torch.save(model.state_dict(), tmp)
    return folder


def load_checkpoint(model: torch.nn.Module, run_dir: Path, window: int) -> None:
    """Load the weights saved after training on ``window`` into ``model``."""
    path = checkpoint_dir(run_dir, window) / "model.pt"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: cannot resume after window {window}")
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))


def predict_frame(trainer: Any, path: Path) -> pd.DataFrame:
    """Score every row of ``path`` with the trainer's model, in file order.

    Returns
    -------
    pd.DataFrame
        ``request_id, user_id, click, order`` read from the file (N rows) and the model's ``p_click,
        p_order, score`` (each (N,)).
    """
    output = trainer.predict(str(path))
    preds = output.predictions
    if not isinstance(preds, dict) or not {"p_click", "p_order", "score"} <= set(preds):
        raise TypeError("the model's eval forward must return a dict with p_click, p_order and score")
    frame = pd.read_parquet(path, columns=RANKING_ID_COLUMNS)
    for key in ("p_click", "p_order", "score"):
        values = np.asarray(preds[key], dtype=np.float64).reshape(-1)
        if len(values) != len(frame):
            raise RuntimeError(f"{path}: {len(frame)} rows but {len(values)} predictions for {key}")
        frame[key] = values
    return frame


@dataclasses.dataclass
class TimeWindowLoop:
    """Train on t, evaluate on t+1, for the selected windows.

    Parameters
    ----------
    trainer:
        A ``transformers4rec.torch.Trainer`` around the model; its datasets are set per window.
    data_args, training_args:
        Parsed command-line arguments.
    evaluate:
        ``evaluate(trainer, eval_path) -> (n_rows, metrics)`` for one evaluation window.
    on_window_end:
        Called after each finished window with the list of window records so far (writes metrics files).
    """

    trainer: Any
    data_args: DataArguments
    training_args: RunTrainingArguments
    evaluate: Callable[[Any, Path], tuple[int, dict[str, float]]]
    on_window_end: Callable[[list[dict[str, Any]]], None]

    def run(self, done: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        """Run the remaining windows; ``done`` holds the records of windows finished by an earlier run."""
        task_dir = self.data_args.task_dir
        windows = select_windows(list_windows(task_dir), self.data_args.windows)
        records = list(done or [])
        finished = {r["train_window"] for r in records}
        run_dir = Path(self.data_args.out)
        if finished:
            last = max(finished)
            load_checkpoint(self.trainer.model, run_dir, last)
            logger.info("resuming after window %d", last)
        for train_window, eval_window in zip(windows[:-1], windows[1:], strict=True):
            if train_window in finished:
                continue
            train_path = window_path(task_dir, train_window, "train")
            if n_rows(train_path) == 0:
                logger.warning("window %d has no training rows: the weights carry over unchanged", train_window)
            else:
                self._train_window(task_dir, train_window)
            save_checkpoint(self.trainer.model, run_dir, train_window)
            eval_path = window_path(task_dir, eval_window, self.data_args.eval_split)
            if n_rows(eval_path) == 0:
                # An empty evaluation set has no metric; the merlin loader would wait forever on it.
                logger.warning("%s has no rows: window %d is not evaluated", eval_path, eval_window)
                rows, metrics = 0, dict[str, float]()
            else:
                rows, metrics = self.evaluate(self.trainer, eval_path)
            record = {"train_window": train_window, "eval_window": eval_window, "n_rows": int(rows), **metrics}
            logger.info("window %d -> %d: %s", train_window, eval_window, _fmt(metrics))
            records.append(record)
            self.on_window_end(records)
        return records

    def _train_window(self, task_dir: Path, window: int) -> None:
        # Same seed stream whether or not the run was resumed: seed + window.
        set_seed(self.training_args.seed + window)
        self.trainer.train_dataset_or_path = str(window_path(task_dir, window, "train"))
        self.trainer.optimizer = None  # fresh AdamW state; weights carry over
        self.trainer.reset_lr_scheduler()  # the schedule restarts each window
        self.trainer.train()


def _fmt(metrics: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:.4f}" for k, v in metrics.items() if isinstance(v, float))


def max_list_length(schema: Schema) -> int:
    """The longest ``value_count.max`` over the list columns of ``schema`` (the loader's padding length)."""
    lengths = [
        int(col.value_count.max)
        for col in schema
        if col.is_list and col.value_count is not None and col.value_count.max
    ]
    return max(lengths) if lengths else 1
