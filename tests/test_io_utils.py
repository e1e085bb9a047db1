"""Atomic outputs: a failure never leaves a half-written file or folder."""

from __future__ import annotations

import json

import numpy as np
import pytest

from t4r_dmt.io_utils import atomic_dir, atomic_path, nan_to_none, write_json


def test_atomic_path_replaces_only_on_success(tmp_path):
    target = tmp_path / "m.json"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]  # no temporary left behind
    with atomic_path(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new"


def test_write_json_handles_numpy_scalars(tmp_path):
    write_json(tmp_path / "a" / "x.json", {"auc": np.float32(0.75), "n": np.int64(3)})
    assert json.loads((tmp_path / "a" / "x.json").read_text()) == {"auc": 0.75, "n": 3}
    with pytest.raises(TypeError, match="not JSON serialisable: object"):
        write_json(tmp_path / "y.json", {"bad": object()})
    assert not (tmp_path / "y.json").exists()


def test_atomic_dir_refuses_existing_output_without_overwrite(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("1")
    with pytest.raises(FileExistsError, match="pass --overwrite"):
        with atomic_dir(out):
            pass
    assert (out / "keep.txt").read_text() == "1"


def test_atomic_dir_failure_keeps_old_output_and_success_replaces_it(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("old")
    with pytest.raises(ValueError, match="bad input"):
        with atomic_dir(out, overwrite=True) as tmp:
            (tmp / "half.txt").write_text("x")
            raise ValueError("bad input")
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    with atomic_dir(out, overwrite=True) as tmp:
        (tmp / "new.txt").write_text("y")
    assert sorted(p.name for p in out.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_atomic_dir_new_folder(tmp_path):
    with atomic_dir(tmp_path / "a" / "b") as tmp:
        (tmp / "f").write_text("z")
    assert (tmp_path / "a" / "b" / "f").read_text() == "z"


def test_outputs_get_normal_permissions(tmp_path):
    import os

    with atomic_path(tmp_path / "f.txt") as tmp:
        tmp.write_text("x")
    with atomic_dir(tmp_path / "d") as tmp:
        (tmp / "g").write_text("y")
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "f.txt").stat().st_mode & 0o777 == 0o666 & ~mask
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o777 & ~mask


def test_nan_to_none_reaches_nested_dicts_and_lists() -> None:
    nan = float("nan")
    assert nan_to_none({"a": nan, "b": [1.0, nan, {"c": nan}], "d": "x", "e": 2}) == {
        "a": None, "b": [1.0, None, {"c": None}], "d": "x", "e": 2}
