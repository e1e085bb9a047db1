"""Training window t also on the rows of the windows before it (``--replay_windows``)."""

from __future__ import annotations

import pandas as pd
import pytest
from window_loop_spies import spy_reads_per_window, track_training_window, train_tiny

from t4r_dmt.training import loop as loop_module
from t4r_dmt.training.arguments import DataArguments, RunTrainingArguments
from t4r_dmt.training.loop import with_replay


def _train_path(data_dir, window: int):
    return data_dir / "ranking" / f"{window:04d}" / "train.parquet"


def test_with_replay_puts_the_earlier_rows_first(data_dir, tmp_path) -> None:
    first, second, third = (_train_path(data_dir, w) for w in (1, 2, 3))
    out = with_replay([first, second], third, tmp_path / "replay" / "rows.parquet")
    expected = pd.concat([pd.read_parquet(p) for p in (first, second, third)], ignore_index=True)
    pd.testing.assert_frame_equal(pd.read_parquet(out), expected)
    assert with_replay([], third, tmp_path / "unused.parquet") == third  # nothing earlier: the window's own file
    assert not (tmp_path / "unused.parquet").exists()


def _spy_training_rows(monkeypatch) -> dict[int, pd.DataFrame]:
    """The rows each window's training loader is given, by window."""
    seen: dict[int, pd.DataFrame] = {}
    current = track_training_window(monkeypatch)
    original_loader = loop_module.train_loader

    def train_loader(trainer, path, shuffle):
        seen[current[0]] = pd.read_parquet(path)
        return original_loader(trainer, path, shuffle)

    monkeypatch.setattr(loop_module, "train_loader", train_loader)
    return seen


def test_replay_trains_on_the_previous_windows_and_holds_out_the_current_ones_tail(data_dir, config_file, tmp_path,
                                                                                  monkeypatch) -> None:
    seen = _spy_training_rows(monkeypatch)
    result = train_tiny(data_dir, config_file, tmp_path / "run", replay_windows=1, early_stopping_tail=0.25,
                        num_train_epochs=2)
    assert [w["train_window"] for w in result["windows"]] == [1, 2]
    rows = {w: pd.read_parquet(_train_path(data_dir, w)) for w in (1, 2)}
    # Window 1 has nothing before it: its head only. Window 2: all of window 1, then window 2's head.
    tail_1 = set(rows[1]["request_id"].drop_duplicates().nlargest(10))
    assert set(seen[1]["request_id"]) == set(rows[1]["request_id"]) - tail_1
    tail_2 = set(rows[2]["request_id"].drop_duplicates().nlargest(10))
    head_2 = rows[2][~rows[2]["request_id"].isin(tail_2)].reset_index(drop=True)
    pd.testing.assert_frame_equal(seen[2], pd.concat([rows[1], head_2], ignore_index=True))


def test_replay_reads_no_window_after_the_one_it_trains(data_dir, config_file, tmp_path, monkeypatch) -> None:
    reads = spy_reads_per_window(monkeypatch)
    train_tiny(data_dir, config_file, tmp_path / "run", replay_windows=5)
    data_files = {w: {p for p in paths if str(data_dir) in p} for w, paths in reads.items()}
    assert data_files == {1: {str(_train_path(data_dir, 1))}, 2: {str(_train_path(data_dir, w)) for w in (1, 2)}}


@pytest.mark.parametrize("value", [-1, 1.5, True])
def test_replay_windows_must_be_a_whole_number(value, tmp_path) -> None:
    with pytest.raises(ValueError, match=f"replay_windows must be a whole number >= 0; got {value!r}"):
        RunTrainingArguments(output_dir=str(tmp_path), report_to=[], replay_windows=value)


def test_replay_is_refused_for_gbdt(data_dir, tmp_path) -> None:
    from t4r_dmt.commands.train import run

    with pytest.raises(ValueError, match="--replay_windows adds earlier windows .* train_windows"):
        run(DataArguments(data=str(data_dir), out=str(tmp_path / "run"), config="gbdt"),
            RunTrainingArguments(output_dir=str(tmp_path / "t"), report_to=[], replay_windows=2))
    assert not (tmp_path / "run").exists()
