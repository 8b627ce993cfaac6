"""Writing files so that a reader, or a run killed half-way, never sees half a file, and two runs never write one
output at once.

A run holds an exclusive lock on each of its outputs (a file, or a data set's folder) for its whole life
(``<output>.lock`` beside it, naming the holder): a second run writing the same output is refused instead of
interleaving with it.

On a local file system the lock is ``fcntl.flock`` on that file (released by the kernel however the run ends). Where
``flock`` may lock on one machine only (network and FUSE file systems: NFS mounted with ``nolock`` or ``local_lock``,
Lustre's default ``localflock``/``noflock``, CIFS, sshfs, s3fs, gcsfuse), two runs on two nodes would both get it;
there the lock is the file itself, created with ``O_EXCL`` (atomic on NFSv3+ and Lustre) and removed when the run
ends. A lock file left by a killed run is taken over when its holder ran on this machine and is gone; one left on
another machine is named in the refusal, with the file to delete. ``VIDEOML_LOCK=flock|file`` overrides the choice."""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
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


def default_cache_dir() -> Path:
    """Where videoml keeps what it can build again (frame indices, the corpus, help texts): ``$VIDEOML_CACHE_DIR``,
    else ``$XDG_CACHE_HOME/videoml``, else ``~/.cache/videoml``."""
    if os.environ.get("VIDEOML_CACHE_DIR"):
        return Path(os.environ["VIDEOML_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "videoml"


def write_atomic(path: str | os.PathLike, text: str, errors: str = "strict") -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it over ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, errors=errors)


# File systems whose flock() may not be seen by other machines (Linux's type names in /proc/self/mounts)
UNSHARED_FLOCK = ("nfs", "nfs4", "lustre", "cifs", "smb3", "smbfs", "9p", "ceph", "glusterfs", "gpfs", "beegfs",
                  "fuse", "fuseblk")


def _mount_type(path: Path) -> str:
    """The type of the file system holding ``path`` (the longest mount point above it in /proc/self/mounts)."""
    path, best = str(path.resolve()), ("", "")
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mounts").read_text().splitlines():
            fields = line.split()
            point = fields[1].encode().decode("unicode_escape") if len(fields) > 2 else ""
            if (path == point or path.startswith(point.rstrip("/") + "/")) and len(point) >= len(best[0]):
                best = (point, fields[2])
    return best[1]


def lock_kind(folder: Path) -> str:
    """The lock for outputs in ``folder``: "flock" where the kernel's lock is seen by every process that can write
    there (a local file system), else "file" (see the module's doc)."""
    chosen = os.environ.get("VIDEOML_LOCK", "auto")
    if chosen in ("flock", "file"):
        return chosen
    kind = _mount_type(folder)
    return "file" if kind.split(".")[0] in UNSHARED_FLOCK else "flock"


def _holder(lock_path: Path) -> str:
    try:
        return lock_path.read_text().strip() or "another process"
    except OSError:
        return "another process"


def _record() -> bytes:
    return f"pid {os.getpid()} on {socket.gethostname()} ({' '.join(sys.argv[:2]) or 'python'})\n".encode()


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


def _busy(output: Path, lock_path: Path, extra: str = "") -> UsageError:
    return UsageError(f"{output} is being written by {_holder(lock_path)}; wait for it to finish or choose another "
                      f"output{extra}")


def _acquire(lock_path: Path, output: Path) -> tuple[Path, int]:
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)  # an output's folder is made when it is claimed
        kind = lock_kind(lock_path.parent)
        fd = _flock(lock_path, output) if kind == "flock" else _exclusive_file(lock_path, output)
    except OSError as e:
        raise UsageError(f"{output}: cannot write beside it ({e.strerror})") from None
    os.ftruncate(fd, 0)
    os.write(fd, _record())
    return lock_path, fd


def _flock(lock_path: Path, output: Path) -> int:
    while True:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise _busy(output, lock_path) from None
        try:  # the holder before us may have removed the lock file after we opened it: lock the one that is there
            if os.stat(lock_path).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


def _exclusive_file(lock_path: Path, output: Path) -> int:
    """The lock file created with O_EXCL; a stale one (its holder ran here and is gone) is taken over."""
    while True:
        try:
            return os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            holder = _holder(lock_path).split()
            here = len(holder) >= 4 and holder[0] == "pid" and holder[2] == "on" and holder[3] == socket.gethostname()
            if not (here and holder[1].isdigit() and not _alive(int(holder[1]))):
                raise _busy(output, lock_path, f" (if that run is dead, delete {lock_path})") from None
            with contextlib.suppress(FileNotFoundError):
                lock_path.unlink()  # a killed run's: free


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        pass
    return True
