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
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from videoml.bench import train_clips
from videoml.bench.ceilings import decode_ceiling
from videoml.bench.common import make_videos, timed_row, web_videos, write as write_results
from videoml.bench.measure import Timing, cycling, time_rounds
from videoml.data.decoding import backend_available, load_index, open_video
from videoml.data.sampling import ClipSpec, random_clip, uniform_clips
from videoml.environment import environment
from videoml.errors import UsageError, VideoDecodeError
from videoml.vocab import Backend, choices


@dataclass(frozen=True)
class DecodeBench:
    data: str = "data/bench"
    """where the benchmark's videos are made once"""
    out: str = "runs/bench/decode"
    """results directory"""
    backends: tuple[str, ...] = choices(Backend)
    """the backends measured (those installed)"""
    frames: int = 8
    """T"""
    stride: int = 8
    """τ"""
    views: int = 10
    """test views"""
    clips: int = 60
    """random clips per scenario"""
    repeats: int = 3
    """timed rounds over each scenario's clips (the median counts)"""
    memory_reads: int = 5000
    pytorchvideo: bool = True
    """the PyTorchVideo EncodedVideo baseline"""
    short_seconds: int = 10
    """length of the many short videos (24 of them)"""
    long_seconds: int = 600
    """length of the long video"""
    real: bool = True
    """the random_clip_real scenario (fetches the conformance corpus once)"""
    training: bool = True
    """the train_clip scenario (original vs prepared data)"""
    train_videos_per_class: int = 8
    """its synthetic set: 6 classes x this; the Kinetics-like set a quarter of it"""
    train_seconds: int = 10
    """the Kinetics-like videos' length"""
    seed: int = 0

    def __post_init__(self):
        unknown = [b for b in self.backends if b not in choices(Backend)]
        if unknown:
            raise UsageError(f"unknown backends {unknown} (known: {', '.join(choices(Backend))})")


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _timed(fn, items, repeats: int) -> list[float]:
    """Seconds per item: ``repeats`` rounds, each over every item once."""
    return time_rounds(cycling(fn, items), Timing(warmup=0, steps=len(items), repeats=repeats, max_spread=None))


def _ptv_read(path: Path, clip: np.ndarray, index):
    from pytorchvideo.data.encoded_video import EncodedVideo

    video = EncodedVideo.from_path(str(path), decode_audio=False, decoder="pyav")
    frames = video.get_clip(float(index.timestamps[clip[0]]), float(index.timestamps[clip[-1]]) + 1 / index.fps)
    video.close()
    return frames["video"][:, :: max(1, (clip[-1] - clip[0]) // max(len(clip) - 1, 1))]


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


def _clip_rows(scenarios: dict, backends: list[str], repeats: int) -> list[dict]:
    """Rows of the reader-already-open scenarios: the FFmpeg ceiling, then every backend against it."""
    rows, ceilings = [], {}
    for name, items in scenarios.items():
        ceilings[name] = decode_ceiling(items, repeats)
        if ceilings[name]:
            rows.append({"scenario": name, "backend": "ffmpeg (ceiling)", "unit": "clip", "ceiling": ceilings[name]})
    for backend in backends:
        readers = {p: open_video(p, backend) for p in {p for items in scenarios.values() for p, _ in items}}
        for name, items in scenarios.items():
            row = timed_row(_timed(lambda item: readers[item[0]].get_frames(item[1]), items, repeats),
                            scenario=name, backend=backend)
            if ceilings[name]:
                row["ratio_to_ceiling"] = round(row["stats"]["clips_per_s"] / ceilings[name]["clips_per_s"], 3)
            rows.append(row)
        for reader in readers.values():
            reader.close()
    return rows


def _open_rows(bench: DecodeBench, backends: list[str], clips: list, views: list, spec: ClipSpec) -> list[dict]:
    """Open, read, close per sample (one random clip; or a video's test views), against PyTorchVideo."""
    def ours(backend, views_of=None):
        def read(item):
            with open_video(item if views_of else item[0], backend) as video:
                video.get_clips(uniform_clips(spec, video.num_frames, views_of)) if views_of else \
                    video.get_frames(item[1])
        return read

    indexes = {p: load_index(p) for p in {*views, *(p for p, _ in clips)}}  # PyTorchVideo reads by time

    def ptv_views(path):
        for clip in uniform_clips(spec, indexes[path].num_frames, bench.views):
            _ptv_read(path, clip, indexes[path])

    rows, baseline = [], {}
    if bench.pytorchvideo:
        for name, fn, items, unit in (("open_random_clip", lambda item: _ptv_read(*item, indexes[item[0]]),
                                       clips, "clip"), ("test_views", ptv_views, views, "video")):
            rows.append(timed_row(_timed(fn, items, bench.repeats), unit=unit, scenario=name, backend="pytorchvideo"))
            baseline[name] = rows[-1]["stats"]["clips_per_s"]
    for backend in backends:
        for name, fn, items, unit in (("open_random_clip", ours(backend), clips, "clip"),
                                      ("test_views", ours(backend, bench.views), views, "video")):
            row = timed_row(_timed(fn, items, bench.repeats), unit=unit, scenario=name, backend=backend)
            if name in baseline:
                row["speedup_vs_pytorchvideo"] = round(row["stats"]["clips_per_s"] / baseline[name], 2)
            rows.append(row)
    return rows


def _memory_rows(bench: DecodeBench, backends: list[str], short: list[Path], spec: ClipSpec, rng) -> list[dict]:
    """Resident memory growth over many open-read-close cycles across files, after a warm-up."""
    rows = []
    for backend in backends:
        cycle = [(p, random_clip(spec, load_index(p).num_frames, rng)) for p in rng.choice(short, bench.memory_reads)]
        warmup = min(300, len(cycle) // 5)
        for number, (path, clip) in enumerate(cycle):
            if number == warmup:
                before = _rss_mb()
            with open_video(path, backend) as video:
                video.get_frames(clip)
        rows.append({"scenario": "memory", "backend": backend, "reads": len(cycle) - warmup,
                     "rss_growth_mb": round(_rss_mb() - before, 1), "rss_mb": round(_rss_mb(), 1)})
    return rows


def run(bench: DecodeBench) -> dict:
    import videoml  # noqa: F401  (compat before pytorchvideo)

    torch.set_num_threads(1)
    rng = np.random.default_rng(bench.seed)
    data = Path(bench.data)
    short = make_videos(data / f"short-{bench.short_seconds}s", web_videos(bench.short_seconds, per_class=3))
    long_video = make_videos(data / f"long-{bench.long_seconds}s",
                             web_videos(bench.long_seconds, ("move_right", "grow")))[0]
    spec = ClipSpec(bench.frames, bench.stride)
    backends = [b for b in bench.backends if backend_available(b)]

    # the same clips for everyone: (path, frame indices)
    def draw(paths):
        return [(Path(p), random_clip(spec, load_index(p).num_frames, rng)) for p in paths]

    clips = draw(rng.choice(short, bench.clips))
    scenarios = {"random_clip": clips, "random_clip_long": draw([long_video] * bench.clips)}
    real = _real_files(backends) if bench.real else []
    if real:
        scenarios["random_clip_real"] = draw(rng.choice(real, bench.clips))
    rows = _clip_rows(scenarios, backends, bench.repeats)
    views = list(rng.choice(short, max(bench.clips // 4, 4)))
    rows += _open_rows(bench, backends, clips, views, spec)
    rows += _memory_rows(bench, backends, short, spec, rng)
    if bench.training:
        rows += train_clips.rows(bench.data, bench.repeats, bench.train_videos_per_class, bench.train_seconds,
                                 bench.seed)
    return {"config": asdict(bench), "environment": environment(), "rows": rows}


def _table_line(r: dict) -> str:
    if r["scenario"] == "memory":
        return (f"| memory ({r['reads']} reads) | {r['backend']} | | | | | {r['rss_growth_mb']:+.1f} MB "
                f"(RSS {r['rss_mb']:.0f} MB) |")
    if "ceiling" in r:
        return f"| {r['scenario']} | {r['backend']} | {r['ceiling']['clips_per_s']:.4g} clips/s | | | | |"
    stats = r["stats"]
    items = stats["clips_per_s"] * stats["median_s"]  # per step
    iqr = "–".join(f"{1000 * q / items:.3g}" for q in stats["iqr_s"])
    ceiling = f"{r['ratio_to_ceiling']:.2f}" if "ratio_to_ceiling" in r else ""
    ptv = f"{r['speedup_vs_pytorchvideo']:.1f}x" if "speedup_vs_pytorchvideo" in r else ""
    return (f"| {r['scenario']} | {r['backend']} | {stats['clips_per_s']:.4g} {r['unit']}s/s | "
            f"{stats['ms_per_clip']:.4g} [{iqr}] | {ceiling} | {ptv} | |")


def table(results: dict) -> str:
    """The results as a Markdown table."""
    lines = ["| scenario | backend | throughput | ms median [IQR] | vs ceiling | vs PyTorchVideo | memory |",
             "|---|---|---|---|---|---|---|"]
    lines += [_table_line(r) for r in results["rows"] if r["scenario"] != "train_clip"]
    training = [r for r in results["rows"] if r["scenario"] == "train_clip"]
    if training:
        lines += ["", "Training samples (open, decode, scale, crop; one thread, CPU time):", "",
                  train_clips.table(training)]
    return "\n".join(lines)


def write(results: dict, out: str | os.PathLike) -> Path:
    return write_results(results, out, "decode", table(results))
