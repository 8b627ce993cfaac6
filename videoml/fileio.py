"""Writing files so that a reader, or a run killed half-way, never sees half a file, and two runs never write one
output at once.

A run holds an exclusive lock on each of its outputs (a file, or a data set's folder) for its whole life
(``fcntl.flock`` on ``<output>.lock`` beside it, naming the holder): a second run writing the same output is refused
instead of interleaving with it."""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
from pathlib import Path
from typing import Iterator

from videoml.errors import UsageError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``path`` to write the whole file to; renamed over ``path`` (atomic on POSIX) when the
    block ends, removed if it raises."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.part")
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as e:
        if e.filename is not None:
            raise
        # a full disk or a read-only file system while writing: errno alone names no file ("[Errno 28] ...")
        raise OSError(e.errno, e.strerror, str(path)) from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def write_atomic(path: str | os.PathLike, text: str, errors: str = "strict") -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it over ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, errors=errors)


def _holder(lock_path: Path) -> str:
    try:
        return lock_path.read_text().strip() or "another process"
    except OSError:
        return "another process"


@contextlib.contextmanager
def output_lock(paths):
    """Exclusive locks on ``paths`` (``<path>.lock`` beside each) for the life of the context; a path another
    process holds is a UsageError naming the holder."""
    held = []
    try:
        for path in paths:
            held.append(_acquire(Path(str(path) + ".lock"), Path(path)))
        yield
    finally:
        for lock_path, fd in reversed(held):
            with contextlib.suppress(OSError):
                lock_path.unlink()
            os.close(fd)


def _acquire(lock_path: Path, output: Path) -> tuple[Path, int]:
    while True:
        try:
            lock_path.parent.mkdir(parents=True, exist_ok=True)  # an output's folder is made when it is claimed
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise UsageError(f"{output}: cannot write beside it ({e.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise UsageError(f"{output} is being written by {_holder(lock_path)}; wait for it to finish or choose "
                             "another output") from None
        try:  # the holder before us may have removed the lock file after we opened it: lock the one that is there
            if os.stat(lock_path).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    os.ftruncate(fd, 0)
    os.write(fd, f"pid {os.getpid()} ({' '.join(sys.argv[:2]) or 'python'})\n".encode())
    return lock_path, fd
