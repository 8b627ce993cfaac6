"""``videoml data prepare SRC DST``: re-encode a data set once into a format that is cheap to train from.

Published recipes do this before training (PySlowFast and MMAction2 resize Kinetics to a short side of 256-320 and
re-encode it): a web video's long GOPs and full resolution make every random clip decode dozens of frames it does
not return, at sizes the model never sees. A prepared set has

- the short side scaled to ``short_side`` (default 320; never upscaled; sizes kept even for 4:2:0),
- optionally at most ``max_fps`` frames a second (the frame on screen at each tick, as clip sampling by ``fps``),
- a key frame every ``gop`` frames (1: every frame), B-frames that are never references, H.264 at a stated CRF,
  preset and tuning (``fastdecode`` by default),
- no audio, the display matrix applied (pictures stored upright), the frames' own time stamps kept.

Without ``max_fps``, frame ``i`` of a prepared video is frame ``i`` of its source (read with videoml's frame-exact
decoding, damaged pictures replaced by their nearest decoded neighbour and counted), so clips, labels and time
stamps mean the same on both. Each video is written aside and renamed into place, so a file under its final name is
complete: a run killed at any point and started again with the same settings redoes only unfinished videos. Frame
indices of the outputs are built into the index cache as they are written.

Layout written under ``DST``::

    prepare.json                    the settings, FFmpeg and PyAV versions, sources, sizes; complete or not
    classes.txt, <split>.csv        PyTorchVideo labeled-paths files over the prepared videos (relative paths)
    manifest.jsonl                  per source video: its prepared path, frames, sizes, or the error that kept it out
    bad.txt                         the sources that could not be prepared, one "path: reason" a line
    videos/...                      the prepared videos, mirroring the sources' folders below their common root
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

from videoml.data.datasets import VideoList, folder, labeled_paths, load_source, shared_classes
from videoml.data.decoding import load_index, open_video
from videoml.data.decoding.budget import DEFAULT_SECONDS, time_budget
from videoml.data.encode import Encoding, TIME_BASE, encode_video
from videoml.data.outdir import claim, to_json
from videoml.errors import UsageError, VideoDecodeError, VideomlError, first_line
from videoml.fileio import output_lock, write_atomic
from videoml.processes import process_pool

SPLITS = ("train", "val", "test", "predict")  # the data sources a fit config names
STATE = "prepare.json"
_OUTPUTS = ("videos", "classes.txt", "manifest.jsonl", "bad.txt", *(f"{s}.csv" for s in (*SPLITS, "all")))
_CHUNK = 64  # frames decoded per call: memory stays small on long videos


@dataclass(frozen=True)
class PrepareConfig:
    """Everything that decides the prepared files. Equal configs over equal sources give equal outputs."""

    short_side: int = 320
    """scale the short side down to this (never up)"""
    max_fps: float | None = None
    """keep at most this many frames a second (default: all; frame i then stays the source's frame i)"""
    # The defaults are what decodes a training clip cheapest (docs/benchmarks.md, "Prepared data"): short GOPs; B-frames
    # that nothing refers to, which a reader skips when a clip does not need them; x264's fastdecode tuning (no CABAC,
    # no deblocking filter: each frame decodes faster, exactly, for some 20 % more bytes).
    gop: int = 16
    """a key frame every this many frames, 1 for every frame"""
    bframes: int = 2
    """B-frames that nothing refers to"""
    crf: int = 23
    """x264's constant-quality scale: 0 lossless, 23 its default, 51 worst"""
    preset: str = "fast"
    """x264 preset"""
    tune: str | None = "fastdecode"
    """x264 tune; null for none"""

    def __post_init__(self):
        problems = []
        if self.short_side < 16:
            problems.append(f"short_side must be >= 16, got {self.short_side}")
        if self.max_fps is not None and not self.max_fps > 0:
            problems.append(f"max_fps must be > 0, got {self.max_fps}")
        if self.gop < 1 or self.bframes < 0:
            problems.append(f"gop must be >= 1 and bframes >= 0, got {self.gop} and {self.bframes}")
        if not 0 <= self.crf <= 51:
            problems.append(f"crf must be within 0..51, got {self.crf}")
        if problems:
            raise UsageError("invalid prepare settings: " + "; ".join(problems))

    def encoding(self, fps: float) -> Encoding:
        options = {"preset": self.preset, "crf": str(self.crf)}
        if self.tune:
            options["tune"] = self.tune
        # The x264 defaults would also put key frames at scene cuts; a fixed interval bounds every clip's cost.
        # B-frames, if any, are never references (no pyramid): a reader need not decode those a clip skips.
        options["x264-params"] = f"keyint={self.gop}:min-keyint={self.gop}:scenecut=0:b-pyramid=none"
        rate = Fraction(min(fps, self.max_fps or fps)).limit_denominator(1001)
        return Encoding("h264", rate, self.gop, self.bframes, "yuv420p", 0, options)


# --- sources ---------------------------------------------------------------------------------------------------------


def read_sources(src: str | os.PathLike) -> dict[str, VideoList]:
    """The splits of ``src``: a fit config (its ``data.train/val/test/predict`` sources, any kind), a labeled-paths
    file (one split named after it), a folder holding ``train.csv``/``val.csv``/``test.csv`` (such as ``data
    synth``'s output; empty ones are left out), or a ``<class>/<video>`` folder (one split, ``all``)."""
    src = Path(src)
    if src.is_dir():
        lists = {s: src / f"{s}.csv" for s in SPLITS}
        splits = {s: labeled_paths(p) for s, p in lists.items() if p.is_file() and p.stat().st_size}
        splits = splits or {"all": folder(src)}
    elif src.suffix.lower() in (".yaml", ".yml", ".json"):
        splits = _config_sources(src)
    elif src.is_file():
        splits = {src.stem: labeled_paths(src)}
    else:
        raise VideomlError(f"{src}: no such file or directory")
    shared_classes(splits)
    return splits


def _config_sources(path: Path) -> dict[str, VideoList]:
    import yaml

    try:
        data = (yaml.safe_load(path.read_text()) or {}).get("data") or {}
    except (OSError, yaml.YAMLError, AttributeError) as e:
        raise VideomlError(f"{path}: cannot read it as a fit config ({first_line(e)})") from None
    splits = {s: load_source(**data[s]) for s in SPLITS if isinstance(data.get(s), dict)}
    if not splits:
        raise VideomlError(f"{path}: names no data source (data.train, data.val, data.test or data.predict)")
    return splits


NAME_MAX = 255  # bytes in a file name (Linux, macOS)


def output_paths(sources: list[Path]) -> dict[Path, Path]:
    """Source -> prepared path under ``videos/``: the source's path below the sources' common folder, as ``.mp4``
    (``name.avi`` and ``name.mkv`` side by side become ``name.mp4`` and ``name_mkv.mp4``; a name too long to write
    with the encoder's ``.part`` suffix is cut, with a digest of the whole to keep it apart)."""
    absolute = [Path(os.path.abspath(p)) for p in sources]  # as listed: links are not followed
    root = Path(os.path.commonpath([p.parent for p in absolute]))
    out, taken = {}, set()
    for source, full in zip(sources, absolute):
        relative = full.relative_to(root).with_suffix(".mp4")
        if relative in taken:
            relative = relative.with_name(f"{full.stem}_{full.suffix.lstrip('.').lower()}.mp4")
        relative = relative.with_name(_fitting(relative.stem) + ".mp4")
        taken.add(relative)
        out[source] = Path("videos") / relative
    return out


def _fitting(stem: str) -> str:
    """``stem``, or when ``stem.mp4.part`` would be longer than NAME_MAX bytes, its start and a digest of it."""
    room = NAME_MAX - len(".mp4.part")
    encoded = os.fsencode(stem)
    if len(encoded) <= room:
        return stem
    digest = hashlib.sha1(encoded).hexdigest()[:12]
    return encoded[:room - len(digest) - 1].decode("utf-8", "ignore") + "_" + digest


# --- one video -------------------------------------------------------------------------------------------------------


def kept_frames(stamps: np.ndarray, max_fps: float | None) -> np.ndarray:
    """Indices of the frames kept: all, or at most ``max_fps`` a second (the frame on screen at each tick)."""
    if max_fps is None or len(stamps) < 2 or (stamps[-1] - stamps[0]) * max_fps >= len(stamps) - 1:
        return np.arange(len(stamps))
    ticks = stamps[0] + np.arange(int((stamps[-1] - stamps[0]) * max_fps) + 1) / max_fps
    return np.unique(np.maximum(np.searchsorted(stamps, ticks + 1e-9, side="right") - 1, 0))


def _times(stamps: np.ndarray) -> np.ndarray:
    """Display times as written: none before 0, each at least one tick of the output clock after the previous."""
    ticks = np.round((stamps - min(float(stamps[0]), 0.0)) / float(TIME_BASE)).astype(np.int64)
    steps = np.arange(len(ticks))
    ticks = np.maximum.accumulate(ticks - steps) + steps  # the least strictly increasing ticks >= the stamps
    return ticks * float(TIME_BASE)


def _size(config: PrepareConfig, width: int, height: int) -> int | None:
    """The output's short side (the long side follows, rounded to even), None to keep the source's size: at most
    ``short_side``, never more than the source's, even."""
    short = min(config.short_side, width, height) // 2 * 2
    return None if short == min(width, height) and width % 2 == 0 and height % 2 == 0 else short


def _frames(video, keep: np.ndarray, size) -> Iterator[np.ndarray]:
    for start in range(0, len(keep), _CHUNK):
        yield from video.get_frames(keep[start:start + _CHUNK], size=size).data.numpy()


def _encode(source: Path, output: Path, config: PrepareConfig, record: dict) -> None:
    with open_video(source, "pyav", threads=1, bad_frames="nearest") as video:
        if video.num_frames < 2:
            raise VideoDecodeError(source, "a single picture, not a video")
        keep = kept_frames(video.timestamps, config.max_fps)
        output.parent.mkdir(parents=True, exist_ok=True)
        encode_video(_frames(video, keep, _size(config, video.width, video.height)),
                     _times(video.timestamps[keep]), output, config.encoding(video.fps))
        record["replaced_frames"] = sorted(set(video.replaced))


def prepare_one(job: tuple[Path, Path, PrepareConfig, float | None]) -> dict:
    """Prepare one video (unless its output already exists) and describe it; never raises for a bad source."""
    source, output, config, timeout = job
    record = {"source": str(source), "ok": False, "error": None}
    started = time.perf_counter()
    try:
        if "\n" in str(source) or "\r" in str(source):
            raise VideoDecodeError(source, "its name holds a line break, which a split file cannot list; rename it")
        with time_budget(timeout, source):
            if not output.exists():
                _encode(source, output, config, record)
            prepared, frames = load_index(output), load_index(source).num_frames  # cached for training, too
            if config.max_fps is None and prepared.num_frames != frames:
                output.unlink()
                raise VideoDecodeError(source, f"the prepared video held {prepared.num_frames} frames, not its {frames}")
            record.update(frames=prepared.num_frames, source_frames=frames,
                          width=prepared.width, height=prepared.height, fps=round(prepared.fps, 3),
                          bytes=output.stat().st_size, source_bytes=source.stat().st_size, ok=True)
    except (VideoDecodeError, OSError) as e:
        record["error"] = getattr(e, "reason", None) or first_line(e)
    except Exception as e:  # any library's failure on one file is that file's error, not the run's
        record["error"] = f"{type(e).__name__}: {first_line(e)}"
    if not record["ok"]:
        with contextlib.suppress(OSError):  # what an interrupted encode left
            output.with_name(output.name + ".part").unlink(missing_ok=True)
    record["seconds"] = round(time.perf_counter() - started, 3)
    return record


# --- the data set ----------------------------------------------------------------------------------------------------


@dataclass
class PrepareSummary:
    root: Path
    records: list[dict]  # one per source video, in source order
    splits: dict[str, int]  # prepared videos per split
    seconds: float

    @property
    def bad(self) -> list[dict]:
        return [r for r in self.records if not r["ok"]]

    def line(self) -> str:
        good = [r for r in self.records if r["ok"]]
        before, after = (sum(r[k] for r in good) for k in ("source_bytes", "bytes"))
        text = (f"prepared {len(good)} of {len(self.records)} videos into {self.root} in {self.seconds:.0f} s: "
                f"{before / 2**20:.1f} MiB -> {after / 2**20:.1f} MiB ({after / max(before, 1):.2f}x); "
                + ", ".join(f"{n} {s}" for s, n in self.splits.items()))
        return text + (f"; {len(self.bad)} bad, listed in {self.root / 'bad.txt'}" if self.bad else "")


def _versions() -> dict:
    from importlib import metadata

    import av

    return {"videoml": metadata.version("videoml"), "pyav": av.__version__, "ffmpeg": av.ffmpeg_version_info,
            "libavcodec": ".".join(map(str, av.library_versions.get("libavcodec", ())))}


def _run_jobs(jobs: list, num_workers: int, progress: bool) -> list[dict]:
    from concurrent.futures.process import BrokenProcessPool

    from tqdm.auto import tqdm

    records = []
    with tqdm(total=len(jobs), desc="prepare", unit="video", disable=not progress) as bar:
        try:
            with process_pool(max(num_workers, 1)) as pool:  # clean processes: see synth.generate
                for record in pool.map(prepare_one, jobs, chunksize=1):
                    records.append(record)
                    bar.update()
        except BrokenProcessPool:
            done = jobs[len(records)][0] if len(records) < len(jobs) else "the last video"
            raise VideomlError(f"a worker process died while preparing (near {done}); the videos finished so "
                               "far are kept: run the same command again to go on") from None
    return records


def prepare(src: str | os.PathLike, dst: str | os.PathLike, config: PrepareConfig = PrepareConfig(),
            num_workers: int = 1, timeout: float | None = DEFAULT_SECONDS, max_bad_fraction: float = 0.05,
            force: bool = False, progress: bool = False) -> PrepareSummary:
    """Prepare the data set ``src`` (see :func:`read_sources`) under ``dst``; see the module doc for the layout.

    Sources that cannot be prepared (missing, unreadable, over ``timeout`` seconds) are left out of the split files
    and listed in ``bad.txt``; more than ``max_bad_fraction`` of them is an error, raised once everything is written.
    """
    started = time.perf_counter()
    root = Path(dst)
    if Path(src).is_dir() and Path(src).resolve() in (root.resolve(), *root.resolve().parents):
        raise UsageError(f"{dst}: inside the source folder {src}, where a later run would read its outputs as "
                         "sources (a class of its own); choose a destination outside it")
    with output_lock([root]):  # one run at a time writes a destination
        splits = read_sources(src)
        state = {"settings": asdict(config), "source": str(Path(src).resolve()), "splits": list(splits)}
        claim(root, STATE, state, _OUTPUTS, force, "prepared data set")
        sources = list(dict.fromkeys(p for videos in splits.values() for p, _ in videos.items))
        outputs = output_paths(sources)
        records = _run_jobs([(p, root / outputs[p], config, timeout) for p in sources], num_workers, progress)
        for p, r in zip(sources, records):
            r["path"] = outputs[p].as_posix() if r["ok"] else None
        missing = list(dict.fromkeys(p for videos in splits.values() for p in videos.missing))
        records += [{"source": str(p), "ok": False, "error": "listed but missing or empty on disk", "path": None}
                    for p in missing]
        by_source = {r["source"]: r for r in records}
        counts = _write_lists(root, splits, by_source)
        summary = PrepareSummary(root, records, counts, time.perf_counter() - started)
        write_atomic(root / STATE, to_json({"config": state, "complete": True, "versions": _versions(),
                                            "videos": len(records), "bad": len(summary.bad), "splits": counts,
                                            "bytes": sum(r.get("bytes", 0) for r in records),
                                            "source_bytes": sum(r.get("source_bytes", 0) for r in records)}))
        if len(summary.bad) > max_bad_fraction * len(records):
            raise VideomlError(f"{len(summary.bad)} of {len(records)} videos could not be prepared (over the "
                               f"max_bad_fraction {max_bad_fraction:g}); they are listed in {root / 'bad.txt'}")
        return summary


def _write_lists(root: Path, splits: dict[str, VideoList], by_source: dict[str, dict]) -> dict[str, int]:
    """classes.txt, the split files (prepared videos only), manifest.jsonl and bad.txt; prepared videos per split."""
    write_atomic(root / "classes.txt", "".join(f"{name}\n" for name in shared_classes(splits)))
    counts = {}
    for name, videos in splits.items():
        lines = [f"{by_source[str(p)]['path']} {label}" for p, label in videos.items if by_source[str(p)]["ok"]]
        write_atomic(root / f"{name}.csv", "".join(line + "\n" for line in lines), errors="surrogateescape")
        counts[name] = len(lines)
    records = list(by_source.values())
    write_atomic(root / "manifest.jsonl", "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records),
                 errors="surrogateescape")
    one_line = {ord("\n"): "\\n", ord("\r"): "\\r"}  # a name's line breaks, escaped: one line per bad video
    write_atomic(root / "bad.txt", "".join(f"{r['source'].translate(one_line)}: {r['error']}\n" for r in records
                                           if not r["ok"]), errors="surrogateescape")
    return counts
