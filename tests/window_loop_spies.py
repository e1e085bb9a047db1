"""Helpers of the training-loop tests: a tiny ranking run, and what the loop reads while each window trains."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from t4r_dmt.training import loop as loop_module
from t4r_dmt.training.arguments import DataArguments, RunTrainingArguments


def train_tiny(data_dir: Path, config_file: Path, out: Path, resume: bool = False, **training: Any) -> dict[str, Any]:
    """``t4r-dmt train`` of ``config_file`` on ``data_dir`` (seed 7, batches of 32, quiet) with ``training``'s
    further ``RunTrainingArguments``; ``resume`` continues the run in ``out``."""
    from t4r_dmt.commands.train import run

    data = DataArguments(data=str(data_dir), out=str(out), config=str(config_file), resume=resume)
    targs = RunTrainingArguments(output_dir=str(out / "trainer"), report_to=[], seed=7, disable_tqdm=True,
                                 per_device_train_batch_size=32, per_device_eval_batch_size=64, **training)
    return run(data, targs)


def track_training_window(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A list that holds the window the loop is training (``[w]``), empty between windows."""
    current: list[int] = []
    original_train = loop_module.TimeWindowLoop._train_window

    def train_window(self: Any, task_dir: Path, window: int) -> Any:
        current[:] = [window]
        try:
            return original_train(self, task_dir, window)
        finally:
            current.clear()

    monkeypatch.setattr(loop_module.TimeWindowLoop, "_train_window", train_window)
    return current


def spy_reads_per_window(monkeypatch: pytest.MonkeyPatch) -> dict[int, list[str]]:
    """Every path ``pq.read_table`` opens while the loop trains window w, under key w (filled as the run goes)."""
    reads: dict[int, list[str]] = {}
    current = track_training_window(monkeypatch)
    original_read = pq.read_table

    def read_table(source: Any, *args: Any, **kwargs: Any) -> Any:
        if current:
            reads.setdefault(current[0], []).append(str(source))
        return original_read(source, *args, **kwargs)

    monkeypatch.setattr(pq, "read_table", read_table)
    return reads


def interrupt_window(monkeypatch: pytest.MonkeyPatch, window: int) -> Callable[[], None]:
    """Make the loop raise ``KeyboardInterrupt`` when it starts training ``window``, as a killed run would; the
    returned function undoes it."""
    original = loop_module.TimeWindowLoop._train_window

    def train_window(self: Any, task_dir: Path, w: int) -> Any:
        if w == window:
            raise KeyboardInterrupt(f"killed during window {window}")
        return original(self, task_dir, w)

    monkeypatch.setattr(loop_module.TimeWindowLoop, "_train_window", train_window)
    return lambda: monkeypatch.setattr(loop_module.TimeWindowLoop, "_train_window", original)


def assert_same_windows(full: list[dict[str, Any]], resumed: list[dict[str, Any]]) -> None:
    """``resumed``'s window records equal ``full``'s, value by value (approximately; NaN where NaN)."""
    assert len(resumed) == len(full)
    for a, b in zip(full, resumed, strict=True):
        for key, value in a.items():
            assert (math.isnan(b[key]) if value != value else b[key] == pytest.approx(value)), key
