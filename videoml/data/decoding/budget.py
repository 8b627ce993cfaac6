"""A time budget per video: no input can hold up a run of many videos.

Readers bound their own seeks and passes, but a pathological file can still be slow beyond reason (a decode pass
over hours of 4K, a demuxer crawling through garbage). Every reader of many videos (``videoml infer``, the training
and evaluation data sets, ``videoml data check``) wraps each video in :func:`time_budget`; a video that exceeds it
becomes that video's ``VideoDecodeError`` (an error record, a bad-video count) and the run goes on.

The budget uses ``SIGALRM`` (``setitimer``), so it applies in a process's main thread, where DataLoader workers and
the main process run their items; elsewhere (a thread) it is not enforced. The alarm interrupts Python code between
FFmpeg calls, which is where every reader loops.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import threading

from jsonargparse.typing import restricted_number_type

from videoml.errors import VideoDecodeError

DEFAULT_SECONDS = 300.0  # per video: generous (a decode pass over an hour of 1080p takes minutes on one core)
MAX_SECONDS = 1e7  # about four months: past any video and any budget
# A duration option (a time budget, a step between clips): positive and finite. Checked when the options are parsed:
# inf or 1e300 overflow the interval timer and the clip arithmetic, and every video then failed one by one.
Seconds = restricted_number_type("Seconds", float, [(">", 0), ("<=", MAX_SECONDS)], join="and",
                                 docstring=f"seconds, more than 0 and at most {MAX_SECONDS:g}")


@contextlib.contextmanager
def time_budget(seconds: float | None, path: str | os.PathLike):
    """Raise ``VideoDecodeError(path, ...)`` in the block when it runs longer than ``seconds`` (None or inf: no
    budget)."""
    if seconds is None or math.isinf(seconds) or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expired(signum, frame):
        raise VideoDecodeError(path, f"reading it took over {seconds:g} s (the per-video time budget)")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
