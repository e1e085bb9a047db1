"""Output folders are claimed exclusively: a second writer gets "another run is writing to DIR", never a
silent replacement of the first one's result or an ENOENT; a claim left by a killed run is taken over.

The concurrency is built deterministically: one claim is held (in this process or in a child process
that signals when it holds it) while the second one is attempted. Nothing races on timing.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from log_fixtures import make_logs

from t4r_dmt import cli
from t4r_dmt.io_utils import atomic_dir

ROOT = Path(__file__).resolve().parents[1]
BUSY = "another run is writing to"


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _child(code: str) -> subprocess.Popen[str]:
    """A Python child process running ``code``; it prints "ready" once it holds its claim."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, env=env)
    assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    return child


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_second_writer_to_the_same_folder_is_refused_and_the_first_result_kept(tmp_path):
    out = tmp_path / "out"
    with atomic_dir(out) as first:
        (first / "result.txt").write_text("first")
        with pytest.raises(FileExistsError, match=f"{BUSY} {out}"):
            with atomic_dir(out) as second:
                (second / "result.txt").write_text("second")
    assert (out / "result.txt").read_text() == "first"
    assert _names(tmp_path) == ["out"]  # no lock, temporary or backup folder left


def test_overwrite_races_give_a_clear_error_not_enoent(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "result.txt").write_text("old")
    with atomic_dir(out, overwrite=True) as first:
        (first / "result.txt").write_text("first")
        with pytest.raises(FileExistsError, match=BUSY):
            with atomic_dir(out, overwrite=True) as second:
                (second / "result.txt").write_text("second")
        assert (out / "result.txt").read_text() == "old"  # untouched until the first run finishes
    assert (out / "result.txt").read_text() == "first"
    assert _names(tmp_path) == ["out"]


def test_preprocess_into_a_folder_another_process_is_writing_fails_with_one_line(tmp_path, capsys):
    events, impressions = make_logs(seed=2)
    events.to_parquet(tmp_path / "events.parquet")
    impressions.to_parquet(tmp_path / "impressions.parquet")
    out = tmp_path / "out"
    child = _child(f"""
        import sys
        from t4r_dmt.io_utils import atomic_dir
        with atomic_dir({str(out)!r}) as tmp:
            (tmp / "from_the_other_run").write_text("x")
            print("ready", flush=True)
            sys.stdin.readline()
    """)
    try:
        argv = ["preprocess", "--events", str(tmp_path / "events.parquet"), "--impressions",
                str(tmp_path / "impressions.parquet"), "--out", str(out), "--with_sessions", "false"]
        assert cli.main(argv) == 1
        err = capsys.readouterr().err
        assert f"t4r-dmt preprocess: error: {BUSY} {out} (pid {child.pid} on host {socket.gethostname()}" in err
        assert len(err.strip().splitlines()) == 1
        assert cli.main([*argv, "--overwrite"]) == 1
        assert BUSY in capsys.readouterr().err
    finally:
        child.communicate("\n")
    assert child.returncode == 0
    assert _names(out) == ["from_the_other_run"]  # the other run's result, complete and not replaced


def test_a_claim_left_by_a_killed_run_is_taken_over_and_its_leftovers_removed(tmp_path, caplog):
    out = tmp_path / "out"
    child = _child(f"""
        from t4r_dmt.io_utils import atomic_dir
        with atomic_dir({str(out)!r}) as tmp:
            (tmp / "half").write_text("x")
            print("ready", flush=True)
            input()
    """)
    child.kill()
    child.wait()
    leftovers = [p.name for p in tmp_path.iterdir()]
    assert ".out.lock" in leftovers and any(n.endswith(".tmp") for n in leftovers)
    with caplog.at_level("WARNING", logger="t4r_dmt.output_lock"):
        with atomic_dir(out) as tmp:
            (tmp / "result.txt").write_text("new")
    assert f"did not finish (pid {child.pid} on host {socket.gethostname()}" in caplog.text
    assert _names(tmp_path) == ["out"] and _names(out) == ["result.txt"]


def test_a_run_killed_while_swapping_in_its_output_leaves_the_previous_output_restorable(tmp_path):
    from t4r_dmt.output_lock import claim_output, lock_path

    out = tmp_path / "out"
    old = tmp_path / ".out.x1.old"  # what atomic_dir had moved aside before it was killed
    old.mkdir()
    (old / "result.txt").write_text("previous")
    lock_path(out).write_text(json.dumps({"pid": _dead_pid(), "host": socket.gethostname(), "started": "earlier",
                                          "command": "t4r-dmt preprocess", "old": str(old)}))
    with claim_output(out):
        assert (out / "result.txt").read_text() == "previous"
    assert _names(tmp_path) == ["out"]


@pytest.fixture()
def no_flock(monkeypatch):
    """A file system without flock (some network mounts): the O_EXCL lock file is used instead."""
    import fcntl

    def flock(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", flock)


def test_without_flock_a_live_claim_is_refused_and_a_dead_one_taken_over(tmp_path, no_flock, caplog):
    from t4r_dmt.output_lock import lock_path

    out = tmp_path / "out"
    with atomic_dir(out):
        with pytest.raises(FileExistsError, match=f"{BUSY} {out} \\(pid {os.getpid()} on host"):
            with atomic_dir(out):
                pass
    assert _names(tmp_path) == ["out"]
    lock = lock_path(tmp_path / "new")
    lock.write_text(json.dumps({"pid": _dead_pid(), "host": socket.gethostname(), "started": "earlier",
                                "command": "t4r-dmt preprocess"}))
    with caplog.at_level("WARNING", logger="t4r_dmt.output_lock"):
        with atomic_dir(tmp_path / "new") as tmp:
            (tmp / "f").write_text("1")
    assert "did not finish" in caplog.text and not lock.exists()
    lock = lock_path(tmp_path / "third")
    lock.write_text(json.dumps({"pid": 1, "host": "elsewhere", "started": "earlier", "command": "x"}))
    with pytest.raises(FileExistsError, match=f"{BUSY} .*pid 1 on host elsewhere.*delete {lock}"):
        with atomic_dir(tmp_path / "third"):
            pass


def test_the_claim_is_released_after_a_failure(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_dir(out):
            raise RuntimeError("boom")
    with atomic_dir(out) as tmp:
        (tmp / "f").write_text("1")
    assert _names(tmp_path) == ["out"]


def test_a_folder_created_meanwhile_by_something_else_is_not_replaced(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(FileExistsError, match="created by something else while this run was writing"):
        with atomic_dir(out) as tmp:
            (tmp / "mine").write_text("1")
            out.mkdir()
            (out / "theirs").write_text("2")
    assert _names(out) == ["theirs"] and _names(tmp_path) == ["out"]



def test_a_demo_into_a_folder_another_demo_is_writing_deletes_nothing(tmp_path):
    from t4r_dmt.demo import DemoArguments
    from t4r_dmt.demo import run as demo
    from t4r_dmt.output_lock import claim_output

    out = tmp_path / "demo"
    out.mkdir()
    (out / "raw").write_text("the other demo's files")
    with claim_output(out):
        with pytest.raises(FileExistsError, match=f"{BUSY} {out}"):
            demo(DemoArguments(out=str(out)))
    assert (out / "raw").read_text() == "the other demo's files"
