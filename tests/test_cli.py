"""The ``t4r-dmt`` dispatcher: usage, unknown commands, JSON argument files, user errors."""

from __future__ import annotations

import json
import subprocess
import sys

from t4r_dmt import cli


def test_usage_lists_every_command(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in cli.SUBCOMMANDS:
        assert name in out
    assert cli.main([]) == 2


def test_unknown_command_is_an_error(capsys):
    assert cli.main(["trian"]) == 2
    assert "unknown command 'trian'" in capsys.readouterr().err


def test_every_subcommand_module_exposes_arguments_and_run():
    import importlib

    for name, (module_name, _) in cli.SUBCOMMANDS.items():
        module = importlib.import_module(module_name)
        assert isinstance(module.ARGUMENTS, tuple) and module.ARGUMENTS, name
        assert callable(module.run), name


def test_json_argument_file_equals_flags(tmp_path):
    args_file = tmp_path / "a.json"
    args_file.write_text(json.dumps({"out": str(tmp_path / "x"), "users": 7, "seed": 3}))
    from_json = cli.parse("synth", [str(args_file)])
    from_flags = cli.parse("synth", ["--out", str(tmp_path / "x"), "--users", "7", "--seed", "3"])
    assert from_json == from_flags
    assert from_json[0].users == 7


def test_console_script_reports_user_errors_without_traceback(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "f").write_text("x")
    proc = subprocess.run(
        [sys.executable, "-m", "t4r_dmt.cli", "synth", "--out", str(tmp_path / "out"), "--users", "5"],
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 1
    assert "error:" in proc.stderr and "--overwrite" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_invalid_argument_value_is_one_line_error(capsys):
    assert cli.main(["synth", "--out", "/nonexistent/x", "--users", "0"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("t4r-dmt synth: error:") and "users" in err


def test_dashed_flags_are_accepted(tmp_path):
    dashed = cli.parse("preprocess", ["--events", "e.csv", "--out", str(tmp_path), "--on-bad-rows", "drop",
                                      "--fit-windows=2"])
    assert dashed[0].on_bad_rows == "drop" and dashed[0].fit_windows == 2
    assert cli._underscore_flag("--a-b=c-d") == "--a_b=c-d" and cli._underscore_flag("x-y") == "x-y"
