"""One more epoch on the held-out tail once the epochs are chosen (``--train_on_tail``)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from window_loop_spies import spy_reads_per_window, track_training_window, train_tiny

from t4r_dmt.training import loop as loop_module
from t4r_dmt.training.arguments import RunTrainingArguments


def _train_path(data_dir, window: int):
    return data_dir / "ranking" / f"{window:04d}" / "train.parquet"


def _spy_training_calls(monkeypatch) -> dict[int, list[tuple[set[int], float, Any, Any]]]:
    """Per window, each ``trainer.train()`` call: (the request ids of its training rows, its num_train_epochs, the
    optimizer before the call, the optimizer after it)."""
    calls: dict[int, list[tuple[set[int], float, Any, Any]]] = {}
    current = track_training_window(monkeypatch)
    rows: list[set[int]] = []
    original_loader = loop_module.train_loader

    def train_loader(trainer, path, shuffle):
        rows[:] = [set(pd.read_parquet(path, columns=["request_id"])["request_id"])]
        if getattr(trainer.train, "spied", False):
            return original_loader(trainer, path, shuffle)
        original = trainer.train

        def train(*args: Any, **kwargs: Any) -> Any:
            before, epochs = trainer.optimizer, float(trainer.args.num_train_epochs)
            outcome = original(*args, **kwargs)
            calls.setdefault(current[0], []).append((rows[0], epochs, before, trainer.optimizer))
            return outcome

        train.spied = True  # type: ignore[attr-defined]
        trainer.train = train
        return original_loader(trainer, path, shuffle)

    monkeypatch.setattr(loop_module, "train_loader", train_loader)
    return calls


def test_the_tail_is_trained_one_epoch_after_the_head(data_dir, config_file, tmp_path, monkeypatch) -> None:
    calls = _spy_training_calls(monkeypatch)
    result = train_tiny(data_dir, config_file, tmp_path / "run", early_stopping_tail=0.25, num_train_epochs=2,
                        train_on_tail=True)
    assert [w["train_window"] for w in result["windows"]] == [1, 2]
    for window in (1, 2):
        requests = pd.read_parquet(_train_path(data_dir, window), columns=["request_id"])["request_id"]
        tail = set(requests.drop_duplicates().nlargest(10))
        (head_rows, head_epochs, fresh, head_adam), (tail_rows, tail_epochs, tail_adam, _) = calls[window]
        assert head_rows == set(requests) - tail and head_epochs == 2.0
        assert tail_rows == tail and tail_epochs == 1.0
        assert fresh is None and tail_adam is head_adam is not None  # the head's AdamW state carries on
    assert all(w["epochs"] in (1, 2) for w in result["windows"])  # the chosen epochs are still recorded


def test_the_tail_pass_changes_the_weights_evaluated(data_dir, config_file, tmp_path) -> None:
    kept = train_tiny(data_dir, config_file, tmp_path / "kept", early_stopping_tail=0.25, num_train_epochs=2)
    tail = train_tiny(data_dir, config_file, tmp_path / "tail", early_stopping_tail=0.25, num_train_epochs=2,
                      train_on_tail=True)
    logloss = [[w["logloss_click"] for w in run["windows"]] for run in (kept, tail)]
    assert logloss[0] != logloss[1]


def test_the_tail_pass_reads_no_later_window(data_dir, config_file, tmp_path, monkeypatch) -> None:
    reads = spy_reads_per_window(monkeypatch)
    train_tiny(data_dir, config_file, tmp_path / "run", early_stopping_tail=0.25, num_train_epochs=1,
               train_on_tail=True)
    data_files = {w: {p for p in paths if str(data_dir) in p} for w, paths in reads.items()}
    assert data_files == {1: {str(_train_path(data_dir, 1))}, 2: {str(_train_path(data_dir, 2))}}


def test_train_on_tail_needs_a_tail(tmp_path) -> None:
    with pytest.raises(ValueError, match="train_on_tail trains on the held-out tail of --early_stopping_tail"):
        RunTrainingArguments(output_dir=str(tmp_path), report_to=[], train_on_tail=True)
