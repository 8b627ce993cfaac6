"""``videoml bench decode``: clip decoding per backend, against FFmpeg's own speed and PyTorchVideo's EncodedVideo.

Scenarios, all single-threaded (decoder threads 1, torch threads 1), on H.264 files made by ``videoml data synth``
(320x240, 30 fps, GOP 60 with B-frames, like web video):

- ``random_clip``: a random clip (T frames, stride τ) from a 10-second video, reader already open. Ceiling: the
  frames from the key frame before the clip to its last frame, each at the time per frame that the ``ffmpeg
  -threads 1`` command line takes to decode the whole file into the null muxer (its own ``-benchmark`` time).
- ``random_clip_long``: the same from a 10-minute video of the same encoding; cost should not grow with the video.
- ``random_clip_real``: the same from the conformance corpus's real files (``videoml data corpus``) that every
  backend benchmarked reads with random access: many codecs, containers and sizes, each against its own ceiling.
- ``open_random_clip``: open the file, read one random clip, close (what a data set does per sample), against
  PyTorchVideo 0.1.5 ``EncodedVideo.from_path(...).get_clip(start, end)`` plus taking every τ-th frame.
- ``test_views``: ``views`` uniform clips of one video (multi-view testing), ours in one call, PyTorchVideo one
  ``get_clip`` per view.
- ``memory``: resident memory growth over many open-read-close cycles across files, after a warm-up.
- ``train_clip``: CPU time per training sample on original and prepared data, 1-4 clips per decoded video
  (:mod:`videoml.bench.train_clips`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from videoml.bench.common import make_videos, write as write_results
from videoml.bench import train_clips
from videoml.data.decoding import backend_available, load_index, open_video
from videoml.data.sampling import ClipSpec, random_clip, uniform_clips
from videoml.data.synth import SynthConfig
from videoml.environment import environment
from videoml.errors import VideoDecodeError


@dataclass(frozen=True)
class DecodeBench:
    data: str = "data/bench"
    """where the benchmark's videos are made once"""
    out: str = "runs/bench/decode"
    backends: tuple[str, ...] = ("pyav", "decord", "torchcodec")
    frames: int = 8
    """T"""
    stride: int = 8
    """τ"""
    views: int = 10
    clips: int = 60
    """random clips per scenario"""
    repeats: int = 3
    """each clip list is timed this many times; per clip, the median counts"""
    memory_reads: int = 5000
    pytorchvideo: bool = True
    short_seconds: int = 10
    """the many short videos (24 of them)"""
    long_seconds: int = 600
    """the long video"""
    real: bool = True
    """the random_clip_real scenario (fetches the conformance corpus once)"""
    training: bool = True
    """the train_clip scenario"""
    train_videos_per_class: int = 8
    """its synthetic set: 6 classes x this; the Kinetics-like set a quarter of it"""
    train_seconds: int = 10
    """the Kinetics-like videos' length"""
    seed: int = 0

    def videos(self, seconds: int, classes: tuple[str, ...], per_class: int) -> SynthConfig:
        """H.264 like web video: 320x240, 30 fps, a key frame every 2 s, B-frames."""
        return SynthConfig(classes=classes, videos_per_class=per_class, frames=30 * seconds, fps="30", width=320,
                           height=240, gop=60, bframes=2, seed=0)


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def _median_times(fn, items, repeats) -> np.ndarray:
    """Per item, the median over ``repeats`` rounds of fn(item)'s wall time."""
    rounds = [[_timed(fn, item) for item in items] for _ in range(repeats)]
    return np.median(np.array(rounds), axis=0)


def ffmpeg_frame_seconds(path: Path, repeats: int) -> float:
    """FFmpeg's own time per frame to decode the whole file, one thread, into the null muxer (median of repeats).

    Whole-file decoding amortises FFmpeg's start-up (probing, filter graph, muxer), which would otherwise dominate a
    clip's few dozen frames; per frame, it is the speed limit of the decoder on this file.
    """
    cmd = ["ffmpeg", "-hide_banner", "-nostdin", "-benchmark", "-threads", "1", "-i", str(path), "-an",
           "-f", "null", "-"]
    times = []
    for _ in range(repeats):
        result = subprocess.run(cmd, capture_output=True, text=True, check=True)
        frames = int(re.findall(r"frame=\s*(\d+)", result.stderr)[-1])
        times.append(float(re.search(r"rtime=([0-9.]+)s", result.stderr).group(1)) / frames)
    return float(np.median(times))


def _row(scenario: str, backend: str, seconds: np.ndarray, unit: str = "clip", **extra) -> dict:
    total = float(np.sum(seconds))
    return {"scenario": scenario, "backend": backend, f"{unit}s_per_s": round(len(seconds) / total, 2),
            f"ms_per_{unit}_median": round(1000 * float(np.median(seconds)), 3),
            "ms_iqr": [round(1000 * float(q), 3) for q in np.percentile(seconds, [25, 75])], **extra}


def _ptv_read(path: Path, clip: np.ndarray, stamps: np.ndarray, fps: float):
    from pytorchvideo.data.encoded_video import EncodedVideo

    video = EncodedVideo.from_path(str(path), decode_audio=False, decoder="pyav")
    frames = video.get_clip(float(stamps[clip[0]]), float(stamps[clip[-1]]) + 1 / fps)["video"]
    video.close()
    return frames[:, :: max(1, (clip[-1] - clip[0]) // max(len(clip) - 1, 1))]


def _real_files(backends: list[str]) -> list[Path]:
    """Corpus files that every backend reads with random access (none when the corpus cannot be fetched here)."""
    from videoml.data.corpus import corpus
    from videoml.errors import VideomlError

    try:
        files = corpus()
    except VideomlError:
        return []
    usable = []
    for path in files:
        try:
            for backend in backends:  # some backends refuse a file only when they read it
                with open_video(path, backend) as video:
                    readable = video.index.numbering != "sequential"
                    video.get_frames([0, video.num_frames // 2, video.num_frames - 1])
        except VideoDecodeError:
            continue
        if readable:
            usable.append(path)
    return usable


def _clip_rows(scenarios: dict, index: dict, backends: list[str], repeats: int) -> list[dict]:
    """Rows of the reader-already-open scenarios: the FFmpeg ceiling, then every backend against it."""
    rows, ceiling = [], {}
    files = {p for items in scenarios.values() for p, _ in items}
    # the decode ceiling: FFmpeg's time per frame on the file, times the frames from the key frame before the clip
    # to its last frame (what any decoder must decode to return the clip)
    if shutil.which("ffmpeg"):
        per_frame = {p: ffmpeg_frame_seconds(p, repeats) for p in files}
        for name, items in scenarios.items():
            ceiling[name] = np.array([per_frame[p] * (c[-1] - index[p].key_before[c[0]] + 1) for p, c in items])
            rows.append(_row(name, "ffmpeg (ceiling)", ceiling[name]))
    for backend in backends:
        readers = {p: open_video(p, backend) for p in files}
        for name, items in scenarios.items():
            times = _median_times(lambda item: readers[item[0]].get_frames(item[1]), items, repeats)
            extra = {}
            if name in ceiling:
                extra["ratio_to_ceiling"] = round(float(np.sum(ceiling[name]) / np.sum(times)), 3)
            rows.append(_row(name, backend, times, **extra))
        for reader in readers.values():
            reader.close()
    return rows


def run(bench: DecodeBench) -> dict:
    import videoml  # noqa: F401  (compat before pytorchvideo)

    torch.set_num_threads(1)
    rng = np.random.default_rng(bench.seed)
    data = Path(bench.data)
    short = make_videos(data / f"short-{bench.short_seconds}s", bench.videos(bench.short_seconds, SynthConfig().classes, 3))
    long_video = make_videos(data / f"long-{bench.long_seconds}s", bench.videos(bench.long_seconds, ("move_right", "grow"),
                                                                             1))[0]
    spec = ClipSpec(bench.frames, bench.stride)
    backends = [b for b in bench.backends if backend_available(b)]

    # the same clips for everyone: (path, frame indices)
    real = _real_files(backends) if bench.real else []
    index = {p: load_index(p) for p in short + [long_video] + real}
    clips = [(p, random_clip(spec, index[p].num_frames, rng)) for p in rng.choice(short, bench.clips)]
    scenarios = {"random_clip": clips,
                 "random_clip_long": [(long_video, random_clip(spec, index[long_video].num_frames, rng))
                                      for _ in range(bench.clips)]}
    if real:
        scenarios["random_clip_real"] = [(Path(p), random_clip(spec, index[p].num_frames, rng))
                                         for p in rng.choice(real, bench.clips)]

    rows = _clip_rows(scenarios, index, backends, bench.repeats)

    # open + read + close, and multi-view testing, against PyTorchVideo
    def ours(backend):
        def read(item):
            with open_video(item[0], backend) as video:
                video.get_frames(item[1])
        return read

    def ours_views(backend):
        def read(path):
            with open_video(path, backend) as video:
                video.get_clips(uniform_clips(spec, video.num_frames, bench.views))
        return read

    def ptv_views(path):
        stamps, fps = index[path].timestamps, index[path].fps
        for clip in uniform_clips(spec, index[path].num_frames, bench.views):
            _ptv_read(path, clip, stamps, fps)

    view_videos = list(rng.choice(short, max(bench.clips // 4, 4)))
    baseline = {}
    if bench.pytorchvideo:
        baseline["open_random_clip"] = _median_times(
            lambda item: _ptv_read(item[0], item[1], index[item[0]].timestamps, index[item[0]].fps), clips,
            bench.repeats)
        baseline["test_views"] = _median_times(ptv_views, view_videos, bench.repeats)
        rows.append(_row("open_random_clip", "pytorchvideo", baseline["open_random_clip"]))
        rows.append(_row("test_views", "pytorchvideo", baseline["test_views"], unit="video"))
    for backend in backends:
        for name, fn, items, unit in (("open_random_clip", ours(backend), clips, "clip"),
                                      ("test_views", ours_views(backend), view_videos, "video")):
            times = _median_times(fn, items, bench.repeats)
            extra = {}
            if name in baseline:
                extra["speedup_vs_pytorchvideo"] = round(float(np.sum(baseline[name]) / np.sum(times)), 2)
            rows.append(_row(name, backend, times, unit=unit, **extra))

    # memory: open-read-close cycles across files
    for backend in backends:
        read = ours(backend)
        cycle = [(p, random_clip(spec, index[p].num_frames, rng)) for p in rng.choice(short, bench.memory_reads)]
        warmup = min(300, len(cycle) // 5)
        for item in cycle[:warmup]:
            read(item)
        before = _rss_mb()
        for item in cycle[warmup:]:
            read(item)
        rows.append({"scenario": "memory", "backend": backend, "reads": len(cycle) - warmup,
                     "rss_growth_mb": round(_rss_mb() - before, 1), "rss_mb": round(_rss_mb(), 1)})

    if bench.training:
        rows += train_clips.rows(bench.data, bench.repeats, bench.train_videos_per_class, bench.train_seconds,
                                 bench.seed)
    return {"config": asdict(bench), "environment": environment(), "rows": rows}


def table(results: dict) -> str:
    """The results as a Markdown table."""
    lines = ["| scenario | backend | throughput | ms median [IQR] | vs ceiling | vs PyTorchVideo | memory |",
             "|---|---|---|---|---|---|---|"]
    for r in results["rows"]:
        if r["scenario"] == "train_clip":
            continue
        if r["scenario"] == "memory":
            lines.append(f"| memory ({r['reads']} reads) | {r['backend']} | | | | | "
                         f"{r['rss_growth_mb']:+.1f} MB (RSS {r['rss_mb']:.0f} MB) |")
            continue
        unit = "clips" if "clips_per_s" in r else "videos"
        rate = r.get("clips_per_s", r.get("videos_per_s"))
        median = r.get("ms_per_clip_median", r.get("ms_per_video_median"))
        iqr = "–".join(f"{q:g}" for q in r["ms_iqr"])
        ceiling = f"{r['ratio_to_ceiling']:.2f}" if "ratio_to_ceiling" in r else ""
        ptv = f"{r['speedup_vs_pytorchvideo']:.1f}x" if "speedup_vs_pytorchvideo" in r else ""
        lines.append(f"| {r['scenario']} | {r['backend']} | {rate:g} {unit}/s | {median:g} [{iqr}] | {ceiling} | "
                     f"{ptv} | |")
    training = [r for r in results["rows"] if r["scenario"] == "train_clip"]
    if training:
        lines += ["", "Training samples (open, decode, scale, crop; one thread, CPU time):", "",
                  train_clips.table(training)]
    return "\n".join(lines)


def write(results: dict, out: str | os.PathLike) -> Path:
    return write_results(results, out, "decode", table(results))
