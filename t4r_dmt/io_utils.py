"""Atomic output helpers: never leave a half-written file or folder behind.

Every artefact t4r_dmt writes goes to a temporary sibling path first and is renamed into place only
once it is complete, so a killed or failed run leaves either the old output or nothing. Output folders
are also claimed exclusively while they are written (:mod:`t4r_dmt.output_lock`).
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from t4r_dmt.output_lock import Claim, claim_output


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary file path beside ``path``; rename it onto ``path`` if the block succeeds.

    The temporary file lives in the same folder, so the final ``os.replace`` is atomic on POSIX.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp creates 0600 files; give the result the usual umask-derived mode.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def nan_to_none(obj: Any) -> Any:
    """``obj`` with every float NaN, in nested dicts and lists, as None: JSON has no NaN, and a measure that
    does not apply is written as null (as in metrics.json)."""
    if isinstance(obj, dict):
        return {k: nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [nan_to_none(v) for v in obj]
    if isinstance(obj, float) and math.isnan(obj):
        return None
    return obj


def _json_default(value: Any) -> Any:
    # numpy scalars and paths are the usual non-JSON values in our results.
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str], overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; move it onto ``path`` when the block succeeds.

    The run holds the exclusive claim on ``path`` (:func:`t4r_dmt.output_lock.claim_output`) from before
    the existence check until the folder is in place, so a second run writing to the same ``path`` fails
    at once with "another run is writing to ..." instead of replacing (or losing) the first one's result.

    Parameters
    ----------
    path:
        The final output folder.
    overwrite:
        If False and ``path`` already exists (and is not empty), raise ``FileExistsError`` before any
        work is done. If True, the old folder is replaced only after the new one is complete.

    Raises
    ------
    OutputBusy
        (a ``FileExistsError``) Another run holds the claim on ``path``.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with claim_output(target) as claim:
        if not overwrite and _occupied(target):
            raise FileExistsError(f"output folder {target} already exists; pass --overwrite to replace it")
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
        claim.note(tmp=tmp)
        try:
            yield tmp
            os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp creates 0700 folders
            _publish(tmp, target, overwrite, claim)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp)


def _occupied(target: Path) -> bool:
    return target.exists() and (not target.is_dir() or any(target.iterdir()))


def _publish(tmp: Path, target: Path, overwrite: bool, claim: Claim) -> None:
    """Rename the finished ``tmp`` onto ``target`` (replacing it only with ``overwrite``)."""
    if overwrite and _occupied(target):
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
        claim.note(tmp=tmp, old=old)  # if this run dies between the renames, the next one restores target
        os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old)
        return
    try:
        os.rename(tmp, target)  # onto a missing or empty folder only: POSIX refuses a non-empty one
    except OSError as err:
        if err.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
            raise
        raise FileExistsError(f"output folder {target} was created by something else while this run was "
                              "writing; it was left as it is (pass --overwrite to replace it)") from err
