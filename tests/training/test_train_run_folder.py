"""``t4r-dmt train`` checks its arguments before ``--out`` exists, leaves nothing behind when it fails before
its first checkpoint (so the corrected command simply works), writes TensorBoard under ``--out`` and not
into the working directory, and names every preset (the gbdt ones too) when one is unknown."""

from __future__ import annotations

import pytest

from t4r_dmt import cli
from t4r_dmt.training.arguments import DataArguments, RunTrainingArguments


def _train_argv(data_dir, config, out, *extra):
    return ["train", "--data", str(data_dir), "--config", str(config), "--out", str(out), "--report_to", "none",
            "--per_device_train_batch_size", "32", "--disable_tqdm", "true", *extra]


def test_windows_out_of_range_fail_before_the_run_folder_exists(data_dir, config_file, tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(_train_argv(data_dir, config_file, out, "--windows", "3:9")) == 1
    assert "--windows 3:9: window(s) [4, 5, 6, 7, 8, 9] not found (available: [1, 2, 3])" in capsys.readouterr().err
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == []
    assert cli.main(_train_argv(data_dir, config_file, out, "--windows", "2:3")) == 0  # the corrected retry
    assert (out / "checkpoints" / "window_0002" / "model.pt").exists()


def test_an_unknown_config_names_every_preset_and_leaves_nothing(data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(_train_argv(data_dir, "dmt_nope", out)) == 1
    err = capsys.readouterr().err
    assert err.startswith("t4r-dmt train: error: unknown preset 'dmt_nope' for --task ranking; choose one of ")
    for preset in ("dmt", "dmt_no_bias", "din", "dien", "dnn", "gbdt", "gbdt_no_history", "gbdt_current_window"):
        assert f" {preset}," in err or f" {preset} or" in err
    assert "xlnet_mlm" not in err  # a next-item preset is no choice for --task ranking
    assert not out.exists()
    assert cli.main(_train_argv(data_dir, tmp_path / "missing.json", out)) == 1
    assert "config file" in capsys.readouterr().err and not out.exists()
    assert cli.main(_train_argv(data_dir, "dmt", out, "--task", "next-item")) == 1
    assert "unknown preset 'dmt' for --task next-item; choose one of " in capsys.readouterr().err
    assert not out.exists()


def test_an_existing_empty_run_folder_is_used(data_dir, config_file, tmp_path):
    out = tmp_path / "run"
    out.mkdir()  # e.g. left by an earlier failed attempt, or made by the user
    assert cli.main(_train_argv(data_dir, config_file, out, "--windows", "1:2")) == 0
    assert (out / "metrics.json").exists()


def test_a_run_failing_before_its_first_checkpoint_removes_what_it_created(data_dir, config_file, tmp_path,
                                                                          monkeypatch):
    from t4r_dmt.training.loop import TimeWindowLoop

    def crash(self, task_dir, window):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(TimeWindowLoop, "_train_window", crash)
    out = tmp_path / "run"
    with pytest.raises(RuntimeError, match="out of memory"):
        cli.main(_train_argv(data_dir, config_file, out))
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no run folder, no lock file
    out.mkdir()
    with pytest.raises(RuntimeError, match="out of memory"):
        cli.main(_train_argv(data_dir, config_file, out))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"] and not any(out.iterdir())  # as it was


def test_a_run_failing_after_a_checkpoint_keeps_it_for_resume(data_dir, config_file, tmp_path, monkeypatch):
    from t4r_dmt.training.loop import TimeWindowLoop

    train_window = TimeWindowLoop._train_window

    def crash_on_window_2(self, task_dir, window):
        if window == 2:
            raise RuntimeError("killed")
        train_window(self, task_dir, window)

    monkeypatch.setattr(TimeWindowLoop, "_train_window", crash_on_window_2)
    out = tmp_path / "run"
    with pytest.raises(RuntimeError, match="killed"):
        cli.main(_train_argv(data_dir, config_file, out))
    assert (out / "checkpoints" / "window_0001" / "model.pt").exists() and (out / "metrics.json").exists()
    monkeypatch.setattr(TimeWindowLoop, "_train_window", train_window)
    assert cli.main(_train_argv(data_dir, config_file, out, "--resume", "true")) == 0


def test_a_second_train_into_a_claimed_run_folder_is_refused(data_dir, config_file, tmp_path, capsys):
    from t4r_dmt.output_lock import claim_output

    out = tmp_path / "run"
    with claim_output(out):
        assert cli.main(_train_argv(data_dir, config_file, out)) == 1
    assert f"another run is writing to {out}" in capsys.readouterr().err
    assert not out.exists()


def test_tensorboard_logs_go_under_the_run_folder_not_the_working_directory(data_dir, config_file, tmp_path,
                                                                            monkeypatch):
    from t4r_dmt.commands.train import run

    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    out = tmp_path / "run"
    targs = RunTrainingArguments(report_to=["tensorboard"], seed=7, disable_tqdm=True, logging_steps=1,
                                 per_device_train_batch_size=32)
    run(DataArguments(data=str(data_dir), out=str(out), config=str(config_file), windows="1:2"), targs)
    assert list(cwd.iterdir()) == []
    logs = list((out / "trainer" / "runs").glob("*/events.out.tfevents.*"))
    assert len(logs) == 1
