"""Child processes: pools that are safe to start from threaded processes, and that never outlive their parent."""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import traceback
from concurrent.futures import ProcessPoolExecutor

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Ask Linux to send this process SIGTERM when its parent dies (``prctl(PR_SET_PDEATHSIG)``), so that no worker
    survives a killed run. A no-op elsewhere."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() == 1:  # the parent died before the request was made: it will never fire
            os.kill(os.getpid(), signal.SIGTERM)


def quiet_handover_errors() -> None:
    """Keep a loader worker's tensor hand-over thread quiet when it fails. That thread (``multiprocessing``'s
    resource sharer, which passes file descriptors of shared memory to the process that reads the batches) reports
    errors through ``sys.excepthook`` as a traceback, and it fails when that reading process died: which its own
    parent reports in one line ("a shard process died; run again with --resume"). Other errors print as before."""
    default = sys.excepthook

    def hook(kind, value, tb):
        frames = traceback.extract_tb(tb)
        if frames and frames[0].filename.endswith(os.path.join("multiprocessing", "resource_sharer.py")):
            return
        default(kind, value, tb)

    sys.excepthook = hook


@contextlib.contextmanager
def process_pool(workers: int):
    """A ``ProcessPoolExecutor`` whose workers come from a fork server and die with their parent.

    Plain fork copies the parent's locks in whatever state its threads left them (torch, OpenMP and PyAV start
    threads), and a forked worker can then hang for ever; the fork server starts workers from a clean process. When
    the block is left by an exception (an error, Ctrl-C, SIGTERM turned into an exception by
    :func:`stop_on_sigterm`), the workers are terminated instead of being waited for.
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["videoml.forkserver_preload"])  # the server itself dies with this process
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=die_with_parent)
    try:
        yield pool
    except BaseException:
        # Work not started is cancelled and forgotten first: the pool's manager thread, finding the workers gone,
        # fails every future it still holds, and Python 3.11's raises (printing a thread traceback) on one that
        # was cancelled meanwhile, as Executor.map cancels its futures when its caller stops reading.
        pending = getattr(pool, "_pending_work_items", {})
        for work_id, item in list(pending.items()):
            if item.future.cancel():
                pending.pop(work_id, None)
        for process in list(getattr(pool, "_processes", {}).values()):
            process.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()


class Terminated(SystemExit):
    """SIGTERM, raised where the main thread is, so that ``finally`` blocks and pools clean up."""


def stop_on_sigterm() -> None:
    """Turn SIGTERM into :class:`Terminated` (exit status 143) in this process's main thread."""

    def handler(signum, frame):
        raise Terminated(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def worker_init(_) -> None:
    """A DataLoader worker's setup (``worker_init_fn``) for every loader of videos."""
    import torch

    torch.set_num_threads(1)  # one core per worker: decoding is single-threaded too
    die_with_parent()  # a killed run leaves no worker behind
    quiet_handover_errors()  # nor a traceback when the process it hands batches to was killed
