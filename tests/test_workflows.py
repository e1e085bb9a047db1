"""The runnable NVTabular workflow scripts of ``workflows/``: each applies its family's defaults, and a flag the
user gives wins over them (the preprocessing itself is tested in ``tests/preprocess``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from t4r_dmt.cli import parse_with_defaults

WORKFLOWS = Path(__file__).resolve().parents[1] / "workflows"


def _script(name: str, monkeypatch: pytest.MonkeyPatch, seen: list[Any]) -> ModuleType:
    """``workflows/<name>.py`` as a module whose preprocessing run only records its arguments."""
    spec = importlib.util.spec_from_file_location(f"workflow_{name}", WORKFLOWS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module.command, "run", lambda args: seen.append(args) or {"ok": True})
    return module


@pytest.mark.parametrize(("name", "expected"), [
    ("ecommerce_events", {"format": "rees46", "window": "1d", "negatives": 4}),
    ("session_clicks", {"format": "yoochoose", "window": "1d", "click_length": 20}),
    ("impression_logs", {"window": "1d"}),
])
def test_workflow_applies_its_family_defaults(name: str, expected: dict[str, Any],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []
    module = _script(name, monkeypatch, seen)
    assert module.main(["--events", "e.parquet", "--impressions", "i.parquet", "--out", "o"]) == {"ok": True}
    (args,) = seen
    assert {key: getattr(args, key) for key in expected} == expected
    assert (args.events, args.out) == ("e.parquet", "o")


def test_a_flag_the_user_gives_wins_over_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []
    _script("ecommerce_events", monkeypatch, seen).main(["--events", "e.parquet", "--out", "o", "--window", "7d",
                                                         "--negatives=2"])
    assert (seen[0].window, seen[0].negatives, seen[0].format) == ("7d", 2, "rees46")


def test_impression_logs_needs_an_impression_log(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []
    with pytest.raises(SystemExit, match="needs --impressions"):
        _script("impression_logs", monkeypatch, seen).main(["--events", "e.parquet", "--out", "o"])
    assert seen == []


def test_parse_with_defaults_reads_sys_argv_when_given_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.argv", ["script.py", "--events", "e.parquet", "--out", "o", "--window", "12h"])
    (args,) = parse_with_defaults("preprocess", ["--window", "1d", "--negatives", "3"])
    assert (args.window, args.negatives, args.events) == ("12h", 3, "e.parquet")


@pytest.mark.parametrize("name", ["ecommerce_events", "session_clicks", "impression_logs"])
def test_a_workflow_reports_bad_input_in_one_line(name: str, tmp_path: Path) -> None:
    """Run as a script, a missing input file is one ``SCRIPT: error: ...`` line naming it, exit status 1, and
    no traceback; nothing is written."""
    import subprocess
    import sys

    missing = tmp_path / "no_such_events.csv"
    result = subprocess.run([sys.executable, str(WORKFLOWS / f"{name}.py"), "--events", str(missing),
                             "--impressions", str(tmp_path / "no_such_impressions.parquet"),
                             "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"{name}.py: error: ") and "no_such_" in last
    assert not (tmp_path / "out").exists()


def test_user_errors_turns_only_user_errors_into_one_line() -> None:
    from t4r_dmt.cli import user_errors

    with pytest.raises(SystemExit) as stop, user_errors("script.py"):
        raise FileNotFoundError("events.csv does not exist")
    assert stop.value.code == "script.py: error: events.csv does not exist"
    with pytest.raises(KeyError), user_errors("script.py"):  # a bug keeps its traceback
        raise KeyError("column")
