"""The reading cells of a suite (``videoml bench decode``): clip decoding per backend, one thread, against FFmpeg's
own speed and PyTorchVideo 0.1.5's ``EncodedVideo``.

- ``random_clip``: a random clip (T frames, stride τ) per call, reader already open, from the ``short``, ``long``
  or ``real`` videos; ceiling: the frames from the key frame before the clip to its last, each at FFmpeg's time per
  frame on that file (:func:`~videoml.bench.ceilings.decode_ceiling`);
- ``open_random_clip``: open the file, read one random clip, close (what a data set does per sample);
- ``test_views``: ``views`` uniform clips of one video (multi-view testing), ours in one call; backend
  ``pytorchvideo``: ``EncodedVideo.from_path(...).get_clip(start, end)`` per clip, then every τ-th frame;
- ``memory``: resident memory growth over ``memory_reads`` open-read-close cycles across files, after a warm-up.

Every backend reads the same clips (drawn from the suite's seed and the set); a round is one pass over them.
"""

from __future__ import annotations

import dataclasses
import os
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from videoml.bench.ceilings import decode_ceiling
from videoml.bench.measure import Timing, cycling, time_rounds
from videoml.bench.suite import Plan
from videoml.bench.videos import VIDEO_SETS
from videoml.data.decoding import load_index, open_video
from videoml.data.sampling import ClipSpec, random_clip, uniform_clips

_CEILINGS: dict[str, dict | None] = {}  # video set -> its clips' decode ceiling, measured once per worker


def _clips(plan: Plan, videos: str, count: int, salt: int = 0) -> list[tuple[Path, np.ndarray]]:
    """``count`` random clips (path, frame indices) of the set ``videos``: the same for every backend. Their indices
    are loaded here, untimed (PyTorchVideo's reads look frame times up in them)."""
    reading = plan.reading
    spec = ClipSpec(reading.frames, reading.stride)
    rng = np.random.default_rng([plan.seed, VIDEO_SETS.index(videos), salt])
    paths = [Path(p) for p in plan.videos[videos]["original"]]
    return [(p, random_clip(spec, load_index(p).num_frames, rng)) for p in rng.choice(paths, count)]


def _one_pass(timing: Timing, items: list) -> Timing:
    return dataclasses.replace(timing, steps=len(items), min_round_s=0.0)


def _ptv_read(path: Path, clip: np.ndarray):
    """PyTorchVideo's way to read a clip: by time, then every τ-th frame of what it decoded."""
    from pytorchvideo.data.encoded_video import EncodedVideo

    index = load_index(path)
    video = EncodedVideo.from_path(str(path), decode_audio=False, decoder="pyav")
    frames = video.get_clip(float(index.timestamps[clip[0]]), float(index.timestamps[clip[-1]]) + 1 / index.fps)
    video.close()
    return frames["video"][:, :: max(1, (clip[-1] - clip[0]) // max(len(clip) - 1, 1))]


def random_clip_cell(plan: Plan, cell, timing: Timing, emit) -> None:
    items = _clips(plan, cell.videos, plan.reading.clips)
    with ExitStack() as readers:
        opened = {p: readers.enter_context(open_video(p, cell.backend)) for p in dict.fromkeys(p for p, _ in items)}
        rounds = time_rounds(cycling(lambda item: opened[item[0]].get_frames(item[1]).data, items),
                             _one_pass(timing, items))
    if cell.videos not in _CEILINGS:  # many files: their spread averages out
        _CEILINGS[cell.videos] = decode_ceiling(items, timing.repeats)
    emit(cell, rounds, 1, ceiling=_CEILINGS[cell.videos])


def _read_views(path: Path, backend: str, spec: ClipSpec, views: int) -> None:
    if backend == "pytorchvideo":
        for clip in uniform_clips(spec, load_index(path).num_frames, views):
            _ptv_read(path, clip)
        return
    with open_video(path, backend) as video:
        video.get_clips(uniform_clips(spec, video.num_frames, views)).data


def _read_clip(item: tuple[Path, np.ndarray], backend: str) -> None:
    if backend == "pytorchvideo":
        _ptv_read(*item)
        return
    with open_video(item[0], backend) as video:
        video.get_frames(item[1]).data


def open_cell(plan: Plan, cell, timing: Timing, emit) -> None:
    """``open_random_clip`` (a clip per call) or ``test_views`` (a video's views per call), files opened per call."""
    reading = plan.reading
    if cell.kind == "open_random_clip":
        items, unit = _clips(plan, cell.videos, reading.clips), "clip"
        step = cycling(lambda item: _read_clip(item, cell.backend), items)
    else:
        spec = ClipSpec(reading.frames, reading.stride)
        items, unit = [p for p, _ in _clips(plan, cell.videos, max(reading.clips // 4, 4), salt=1)], "video"
        step = cycling(lambda path: _read_views(path, cell.backend, spec, reading.views), items)
    emit(cell, time_rounds(step, _one_pass(timing, items)), 1, unit=unit)


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def memory_cell(plan: Plan, cell, timing: Timing, emit) -> None:
    """Resident memory growth over many open-read-close cycles across files, after a warm-up (not timed)."""
    cycle = _clips(plan, cell.videos, plan.reading.memory_reads, salt=2)
    warmup = min(300, len(cycle) // 5)
    for number, item in enumerate(cycle):
        if number == warmup:
            before = _rss_mb()
        _read_clip(item, cell.backend)
    emit(cell, None, 1, reads=len(cycle) - warmup, rss_growth_mb=round(_rss_mb() - before, 1),
         rss_mb=round(_rss_mb(), 1))
