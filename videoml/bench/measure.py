"""How every benchmark times a step and reports it: warm-up, timed rounds, median, spread, confidence interval.

``warmup`` untimed calls first (compilation, autotuning, allocator growth); then ``repeats`` rounds of ``steps``
calls (more when ``min_round_s`` asks for rounds at least that long), the device synchronised before and after each
round; a round's time per call is one sample. Several steps can be timed round-robin (:func:`round_robin`), a round
of each in turn. Reported: the median, the interquartile range, a 95 % bootstrap
interval of the median (resampling the rounds), and the spread (IQR / median). A measurement whose spread exceeds
``max_spread`` is refused (:class:`TooNoisy`): a median that moves by more than that between rounds says more about
the machine than about the code.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from videoml.errors import VideomlError


class TooNoisy(VideomlError):
    """A measurement varied too much between rounds to be reported."""


@dataclass(frozen=True)
class Timing:
    warmup: int = 3
    steps: int = 5
    repeats: int = 7
    max_spread: float | None = 0.25  # IQR / median above which a measurement is refused; None: never
    min_round_s: float = 0.0  # more steps per round when ``steps`` calls take less than this (as timeit's autorange)


def time_rounds(step: Callable[[], object], timing: Timing, sync: Callable[[], None] = lambda: None,
                clock: Callable[[], float] = time.perf_counter) -> list[float]:
    """Seconds per call of ``step``, one value per timed round; ``clock``: wall time, or ``time.process_time`` for
    the process's CPU time. A step that reads a different item per call (a clip, a video) cycles through them
    itself: each round then averages over ``steps`` items."""
    return round_robin([step], timing, sync, clock)[0].seconds


@dataclass
class Rounds:
    seconds: list[float]
    """per timed round, seconds per call"""
    cpu_s: float = 0.0
    """the process's CPU seconds over the timed rounds"""
    calls: int = 0
    """calls in the timed rounds"""


def _calls_per_round(step, timing: Timing, sync, clock) -> int:
    """``timing.steps``, or more when ``min_round_s`` asks for rounds that long (one call timed to size them)."""
    if timing.min_round_s <= 0:  # short calls: rounds long enough that clock and scheduler jitter average out
        return timing.steps
    start = clock()
    step()
    sync()
    return max(timing.steps, math.ceil(timing.min_round_s / max(clock() - start, 1e-9)))


def round_robin(steps: list[Callable[[], object]], timing: Timing, sync: Callable[[], None] = lambda: None,
                clock: Callable[[], float] = time.perf_counter) -> list[Rounds]:
    """:func:`time_rounds` for several steps at once, a round of each in turn: a machine whose speed drifts during
    the measurement shifts every step alike, so their ratios hold (what comparing encodings or settings needs)."""
    for step in steps:
        for _ in range(timing.warmup):
            step()
    sync()
    counts = [_calls_per_round(step, timing, sync, clock) for step in steps]
    results = [Rounds([]) for _ in steps]
    for _ in range(timing.repeats):
        for step, calls, result in zip(steps, counts, results):
            sync()
            start, cpu = clock(), time.process_time()
            for _ in range(calls):
                step()
            sync()
            result.seconds.append((clock() - start) / calls)
            result.cpu_s += time.process_time() - cpu
            result.calls += calls
    return results


class cycling:  # noqa: N801  (used as a function: a step)
    """A step that calls ``fn`` on the next of ``items`` each time, round and round."""

    def __init__(self, fn: Callable[[object], object], items):
        self.fn, self.items, self.calls = fn, list(items), 0

    def __call__(self):
        item = self.items[self.calls % len(self.items)]
        self.calls += 1
        return self.fn(item)


def bootstrap_median_ci(samples, confidence: float = 0.95, resamples: int = 2000, seed: int = 0) -> tuple[float,
                                                                                                        float]:
    values = np.asarray(samples, dtype=float)
    rng = np.random.default_rng(seed)
    medians = np.median(rng.choice(values, size=(resamples, len(values)), replace=True), axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(medians, [tail, 1 - tail])
    return float(low), float(high)


def summarize(seconds_per_step: list[float], items_per_step: int) -> dict:
    """Statistics of per-step times, also as items (clips) per second and milliseconds per item."""
    median = float(np.median(seconds_per_step))
    q1, q3 = (float(v) for v in np.percentile(seconds_per_step, [25, 75]))
    low, high = bootstrap_median_ci(seconds_per_step)
    return {"median_s": median, "iqr_s": [q1, q3], "ci95_s": [low, high], "spread": (q3 - q1) / median,
            "clips_per_s": items_per_step / median, "clips_per_s_ci95": [items_per_step / high, items_per_step / low],
            "ms_per_clip": 1000 * median / items_per_step, "rounds": len(seconds_per_step)}


def check_noise(stats: dict, what: str, timing: Timing) -> None:
    if timing.max_spread is not None and stats["spread"] > timing.max_spread:
        raise TooNoisy(f"{what}: too noisy to report (spread {stats['spread']:.0%} of the median over "
                       f"{stats['rounds']} rounds, limit {timing.max_spread:.0%}); run it on a quiet machine or "
                       "with more steps per round")
