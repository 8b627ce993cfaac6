"""Process pools that are safe to start from a process that already runs threads."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor


def process_pool(workers: int) -> ProcessPoolExecutor:
    """A pool whose workers come from a fork server.

    Plain fork copies the parent's locks in whatever state its threads left them (torch, OpenMP and PyAV start
    threads), and a forked worker can then hang for ever; the fork server starts workers from a clean process.
    """
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("forkserver"))
