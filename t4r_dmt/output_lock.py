"""Exclusive claims on output folders: two runs never write to the same ``--out`` at once.

A run claims its output ``DIR`` by locking ``.DIR.lock`` beside it (``fcntl.flock``, held until the run
ends). A second run that asks for the same ``DIR`` gets :class:`OutputBusy` ("another run is writing to
DIR ...") before it does any work, so neither result is silently lost. The lock file records who holds
it (pid, host, start time, command) and the run's scratch paths; it is removed when the run ends.

A run that is killed cannot remove its lock file, but the kernel releases its lock: the next run takes
the lock over, says so (naming the dead run), and cleans up what the dead run left beside ``DIR``
(its half-written temporary folder, or restores the previous output if it died while swapping it in).

Where the file system has no ``flock`` (some network mounts), the lock file is created with ``O_EXCL``
instead, and a lock whose pid is no longer running on this host is taken over the same way; a lock held
by another host must then be removed by hand (the error says which file).
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import shutil
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: only the O_EXCL lock is available
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

# flock is not supported on this file system: fall back to an O_EXCL lock file.
_NO_FLOCK = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}


def lock_path(target: str | os.PathLike[str]) -> Path:
    """The lock file that guards the output ``target``: ``.NAME.lock`` in the same folder."""
    target = Path(target)
    return target.parent / f".{target.name}.lock"


@dataclass
class Owner:
    """Who holds a claim, and the scratch paths to clean up if it dies (recorded in the lock file)."""

    pid: int
    host: str
    started: str
    command: str
    tmp: str | None = None
    old: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def current(cls) -> Owner:
        return cls(pid=os.getpid(), host=socket.gethostname(),
                   started=time.strftime("%Y-%m-%d %H:%M:%S"), command=" ".join(sys.argv)[:500])

    @classmethod
    def parse(cls, text: str) -> Owner | None:
        """The owner recorded in a lock file's text; None if it is empty or unreadable (being written)."""
        try:
            data = json.loads(text)
            return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
        except (ValueError, TypeError):
            return None

    def describe(self) -> str:
        return f"pid {self.pid} on host {self.host}, started {self.started}"


class OutputBusy(FileExistsError):
    """Another run holds the claim on an output folder."""

    def __init__(self, target: Path, owner: Owner | None, lock: Path, manual: bool = False) -> None:
        who = owner.describe() if owner is not None else "owner unknown"
        message = f"another run is writing to {target} ({who}); wait for it to finish or choose another output"
        if manual:
            message += f". If no such run exists any more, delete {lock}"
        super().__init__(message)
        self.target = target
        self.owner = owner


class Claim:
    """A held claim on ``target`` (see :func:`claim_output`)."""

    def __init__(self, target: Path, lock: Path, fd: int) -> None:
        self.target = target
        self.lock = lock
        self._fd = fd
        self.owner = Owner.current()

    def note(self, tmp: str | os.PathLike[str] | None = None, old: str | os.PathLike[str] | None = None) -> None:
        """Record the run's scratch paths in the lock file, so that a later run can clean up after this
        one if it is killed: ``tmp`` (a folder being written: deleted then), ``old`` (the previous output,
        moved aside while the new one is renamed into place: restored then if the output is missing,
        else deleted)."""
        self.owner.tmp = None if tmp is None else os.fspath(tmp)
        self.owner.old = None if old is None else os.fspath(old)
        self._write()

    def _write(self) -> None:
        data = json.dumps(asdict(self.owner)).encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)

    def release(self) -> None:
        # Unlink while still holding the lock: a run waiting on this file then re-opens a fresh one.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.lock)
        os.close(self._fd)


@contextlib.contextmanager
def claim_output(target: str | os.PathLike[str]) -> Iterator[Claim]:
    """Hold the exclusive claim on the output ``target`` for the duration of the block.

    Raises
    ------
    OutputBusy
        Another live run holds it.
    """
    target = Path(target)
    lock = lock_path(target)
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd, previous = _acquire(target, lock)
    claim = Claim(target, lock, fd)
    try:
        claim._write()
        if previous is not None:
            _recover(target, previous)
        yield claim
    finally:
        claim.release()


def _acquire(target: Path, lock: Path) -> tuple[int, Owner | None]:
    """Lock ``lock``; returns its descriptor and the owner a dead run left recorded in it (if any)."""
    if fcntl is None:  # pragma: no cover
        return _acquire_exclusive(target, lock)
    while True:
        created = True
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            created = False
            try:
                fd = os.open(lock, os.O_RDWR)
            except FileNotFoundError:
                continue  # released meanwhile
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = Owner.parse(_read(fd))
            os.close(fd)
            raise OutputBusy(target, owner, lock) from None
        except OSError as err:
            if err.errno not in _NO_FLOCK:
                os.close(fd)
                raise
            if created:  # no flock here, but creating the file with O_EXCL was a claim of its own
                return fd, None
            os.close(fd)
            return _acquire_exclusive(target, lock)
        # The previous holder unlinks the file as it finishes: if it did so between our open and our
        # flock, we hold a lock on a file nobody else will open. Start again with the current file.
        try:
            current = os.stat(lock)
        except FileNotFoundError:
            os.close(fd)
            continue
        mine = os.fstat(fd)
        if (current.st_ino, current.st_dev) != (mine.st_ino, mine.st_dev):
            os.close(fd)
            continue
        return fd, None if created else Owner.parse(_read(fd))


def _acquire_exclusive(target: Path, lock: Path) -> tuple[int, Owner | None]:
    """The lock without flock: create the file with O_EXCL; take over one whose pid died on this host."""
    stale: Owner | None = None
    for _ in range(3):
        try:
            return os.open(lock, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644), stale
        except FileExistsError:
            pass
        try:
            owner = Owner.parse(lock.read_text())
        except FileNotFoundError:
            continue  # released meanwhile: try again
        if owner is None or owner.host != socket.gethostname() or _alive(owner.pid):
            # Without flock a lock cannot be proven stale (another host, a reused pid): say how to clear it.
            raise OutputBusy(target, owner, lock, manual=True)
        stale = owner
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock)
    raise OutputBusy(target, None, lock, manual=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read(fd: int) -> str:
    return os.pread(fd, 1 << 16, 0).decode("utf-8", errors="replace")


def _recover(target: Path, dead: Owner) -> None:
    """Clean up after a run that died holding the claim on ``target`` (its paths are in ``dead``)."""
    logger.warning("%s: taking over the claim of an earlier run that did not finish (%s); cleaning up after it",
                   target, dead.describe())
    for recorded in (dead.tmp, dead.old):
        if recorded is not None and not _beside(Path(recorded), target):
            logger.warning("%s: ignoring the recorded path %s (not a scratch path of this output)", target, recorded)
            return
    if dead.tmp is not None and Path(dead.tmp).exists():
        shutil.rmtree(dead.tmp, ignore_errors=True)
        logger.warning("%s: removed the unfinished output %s", target, dead.tmp)
    if dead.old is not None and Path(dead.old).exists():
        # The dead run had moved the previous output to ``old`` to swap its own in: if ``target`` is there,
        # the swap was done (``old`` is what it was deleting); if not, the previous output goes back.
        if target.exists():
            shutil.rmtree(dead.old, ignore_errors=True)
            logger.warning("%s: removed the replaced output %s", target, dead.old)
        else:
            os.replace(dead.old, target)
            logger.warning("%s: restored the previous output from %s", target, dead.old)


def _beside(path: Path, target: Path) -> bool:
    """True for the scratch names :mod:`t4r_dmt.io_utils` gives beside ``target`` (``.NAME.*``)."""
    return path.parent == target.parent and path.name.startswith(f".{target.name}.")
