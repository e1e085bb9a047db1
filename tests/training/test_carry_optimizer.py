"""The AdamW state carried from window to window (``--carry_optimizer``), and resumed exactly."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import pytest
from window_loop_spies import assert_same_windows, interrupt_window, track_training_window, train_tiny

from t4r_dmt.training import loop as loop_module


def _spy_optimizer_steps(monkeypatch) -> dict[int, float]:
    """Per window, the AdamW step count its training starts from (0 for a fresh optimizer), read when the loop
    restarts the window's learning-rate schedule."""
    from t4r_dmt.model.trainer import DMTTrainer as Trainer

    steps: dict[int, float] = {}
    current = track_training_window(monkeypatch)
    original = Trainer.reset_lr_scheduler

    def reset_lr_scheduler(self: Any) -> None:
        states = [] if self.optimizer is None else list(self.optimizer.state.values())
        steps[current[0]] = float(states[0]["step"]) if states else 0.0
        original(self)

    monkeypatch.setattr(Trainer, "reset_lr_scheduler", reset_lr_scheduler)
    return steps


@pytest.mark.parametrize("carry", [False, True])
def test_each_window_starts_from_the_previous_windows_adamw_state_only_when_carried(
        carry, data_dir, config_file, tmp_path, monkeypatch) -> None:
    steps = _spy_optimizer_steps(monkeypatch)
    train_tiny(data_dir, config_file, tmp_path / "run", carry_optimizer=carry)
    assert steps[1] == 0.0
    # One epoch over window 1's rows in batches of 32 (the last one short).
    batches = math.ceil(len(pd.read_parquet(data_dir / "ranking" / "0001" / "train.parquet")) / 32)
    assert steps[2] == (batches if carry else 0.0)
    saved = (tmp_path / "run" / "checkpoints" / "window_0001" / loop_module.OPTIMIZER_FILE).exists()
    assert saved == carry


def test_resume_restores_the_carried_state(data_dir, config_file, tmp_path, monkeypatch) -> None:
    full = train_tiny(data_dir, config_file, tmp_path / "full", carry_optimizer=True)["windows"]
    fresh = train_tiny(data_dir, config_file, tmp_path / "fresh")["windows"]
    assert full[1]["logloss_click"] != fresh[1]["logloss_click"]  # window 2 differs

    undo = interrupt_window(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        train_tiny(data_dir, config_file, tmp_path / "resumed", carry_optimizer=True)
    undo()
    resumed = train_tiny(data_dir, config_file, tmp_path / "resumed", resume=True, carry_optimizer=True)["windows"]
    assert_same_windows(full, resumed)


def test_resuming_a_run_without_the_state_names_the_missing_file(data_dir, config_file, tmp_path) -> None:
    train_tiny(data_dir, config_file, tmp_path / "run")
    with pytest.raises(FileNotFoundError, match=r"window_0002/optimizer.pt is missing: window 2 was trained without "
                                                r"--carry_optimizer"):
        train_tiny(data_dir, config_file, tmp_path / "run", resume=True, carry_optimizer=True)
