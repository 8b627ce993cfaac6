"""Child processes: pools that are safe to start from threaded processes, and that never outlive their parent."""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
import traceback
from concurrent.futures import ProcessPoolExecutor

_PR_SET_PDEATHSIG = 1


def die_with_parent(signum: int = signal.SIGTERM) -> None:
    """Ask Linux to send this process ``signum`` when its parent dies (``prctl(PR_SET_PDEATHSIG)``), so that no
    worker survives a killed run. A no-op elsewhere."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)
        if os.getppid() == 1:  # the parent died before the request was made: it will never fire
            os.kill(os.getpid(), signum)


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
    :func:`stop_on_signals`), the workers are terminated instead of being waited for.
    """
    _quiet_resource_tracker()
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["videoml.forkserver_preload"])  # the server itself dies with this process
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_pool_worker_init)
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


def dead_workers_reported_by_next() -> None:
    """Leave a DataLoader worker's death to the loader's ``next()`` (within its 5-second status check), where the
    reader can handle it: torch reports it from a SIGCHLD handler, at whatever line the main thread is on, even inside
    the loader's cleanup ("Exception ignored in ... __del__" and a traceback). A crash while decoding becomes that
    video's error (:func:`items_of_dead_workers`); a run stopping on a signal, which its workers get too (Ctrl-C,
    ``timeout`` and scancel signal every process), ends without a worker's death reported. The main thread only."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)


def items_of_dead_workers(iterator, reading) -> list[int]:
    """The items the dead workers of a DataLoader ``iterator`` were reading (``reading``: a shared array, per worker
    id the item it reads; -1 for none), once a worker's death is visible (the loader saw it first)."""
    workers = getattr(iterator, "_workers", [])
    seen_by = time.monotonic() + 1  # a worker that is dying: let it be seen as dead
    while all(process.is_alive() for process in workers) and time.monotonic() < seen_by:
        time.sleep(0.05)
    return [reading[w] for w, process in enumerate(workers) if not process.is_alive() and reading[w] >= 0]


def stop_on_signals() -> None:
    """Turn SIGTERM into :class:`Terminated` (exit status 143) in this process's main thread, and Ctrl-C into
    KeyboardInterrupt as before (unless SIGINT is ignored, as in a shell's background job); either way the loader
    workers' deaths that follow are expected (:func:`dead_workers_reported_by_next`)."""

    def terminated(signum, frame):
        dead_workers_reported_by_next()
        raise Terminated(128 + signum)

    def interrupted(signum, frame):
        dead_workers_reported_by_next()
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminated)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, interrupted)


def _pool_worker_init() -> None:
    die_with_parent()
    # Ctrl-C reaches every process of the run: stopping is the parent's decision (it terminates its workers)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _quiet_resource_tracker() -> None:
    """Start multiprocessing's resource tracker (once per run) with its leak warnings off. It unlinks what a
    terminated worker left (the semaphores of its loader's queues) and warns of each "leaked" one as the run ends;
    workers are terminated on purpose when a run stops, and what they leave is cleaned up all the same."""
    from multiprocessing import resource_tracker

    sys.warnoptions.append("ignore::UserWarning:multiprocessing.resource_tracker")  # the tracker's -W option
    try:
        resource_tracker.ensure_running()
    finally:
        sys.warnoptions.pop()


def worker_init(_) -> None:
    """A DataLoader worker's setup (``worker_init_fn``) for every loader of videos."""
    import torch

    torch.set_num_threads(1)  # one core per worker: decoding is single-threaded too
    die_with_parent()  # a killed run leaves no worker behind
    # Ctrl-C reaches every process of the run: the reader decides (fit stops at the next batch, infer records what it
    # has) and shuts its workers down. (SIGTERM is torch's: from the reader, a quiet exit.)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    quiet_handover_errors()  # nor a traceback when the process it hands batches to was killed
