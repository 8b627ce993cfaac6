"""``videoml data conformance``: every backend against FFmpeg's own decoder, frame by frame.

Ground truth is what the ``ffmpeg`` command line writes for ``-i FILE -map 0:v:0 -fps_mode passthrough -pix_fmt
rgb24``: every decoded picture of the first video stream, in the order the decoder outputs them, converted to RGB the
way FFmpeg converts by default, with the display matrix applied (the command line's ``-autorotate``). Frame ``i`` of
a reader must be the ``i``-th of those pictures, or the reader must refuse the file with a
:class:`~videoml.errors.VideoDecodeError`.

Each file x backend gets one verdict:

- ``exact``: ``num_frames`` equals FFmpeg's picture count and every frame read matches FFmpeg's within the backend's
  tolerance (:data:`TOLERANCE`; 0 for PyAV, which converts with the same swscale code as the command line);
- ``refused``: the backend raised a VideoDecodeError, whose reason is the verdict's detail;
- ``wrong``: a different count, or a different picture; the detail names the first bad index.

Reads checked: every frame in sequential calls, random single frames, random clips (T x tau) and uniform multi-view
clips, with the samplers training and inference use; and, by newly opened readers (as a data set opens a file per
sample, so the decoder starts at a later key frame without having seen the file's start), random clips and the last
frame.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from videoml.data.decoding import open_video
from videoml.data.sampling import ClipSpec, random_clip, uniform_clips
from videoml.errors import VideoDecodeError, VideomlError
from videoml.processes import process_pool

# Largest mean absolute difference (0-255) accepted per frame, per backend. PyAV and torchcodec convert through
# libavfilter like the command line and match it to the bit on almost every file; on one Theora file (4:4:4, odd
# size) every FFmpeg library build seen differs from the command line by one level in about 0.5 % of the pixels of
# some frames (mean 0.005), hence 0.02. decord converts with its own swscale settings: up to 1.6 on average.
# A different picture differs by far more (a neighbouring frame of a real video: 2 to 40).
TOLERANCE = {"pyav": 0.02, "decord": 2.0, "torchcodec": 0.02}
SEQUENTIAL_CHUNK = 128  # frames per sequential call: every frame is read, memory stays bounded on long files
FFMPEG_TIMEOUT_S = 300


@dataclass
class Verdict:
    path: str
    backend: str
    status: str  # "exact", "refused" or "wrong"
    detail: str = ""
    frames: int = 0  # FFmpeg's picture count
    max_diff: float = 0.0  # largest per-frame mean absolute difference seen

    def as_dict(self) -> dict:
        return asdict(self)


class FFmpegFrames:
    """FFmpeg's decoded pictures of a file, as RGB arrays, kept in a temporary file (memory-mapped)."""

    def __init__(self, path: str | os.PathLike, autorotate: bool = True, timeout: float = FFMPEG_TIMEOUT_S):
        self.path = str(path)
        self._tmp = tempfile.NamedTemporaryFile(prefix="videoml-ffmpeg-", suffix=".ppm")
        command = ["ffmpeg", "-v", "error", "-nostdin", "-threads", "1", *([] if autorotate else ["-noautorotate"]), "-i", self.path,
                   "-map", "0:v:0", "-an", "-sn", "-dn", "-fps_mode", "passthrough", "-pix_fmt", "rgb24",
                   "-c:v", "ppm", "-f", "image2pipe", "-y", self._tmp.name]
        try:
            run = subprocess.run(command, capture_output=True, timeout=timeout)
        except FileNotFoundError:
            raise VideomlError("the ffmpeg command is needed for conformance checks (Debian: apt install ffmpeg)")
        except subprocess.TimeoutExpired:
            raise VideoDecodeError(self.path, f"ffmpeg did not finish within {timeout:g} s") from None
        self.ffmpeg_error = run.stderr.decode(errors="replace").strip().splitlines()[-1:] if run.returncode else []
        self._data = np.memmap(self._tmp.name, dtype=np.uint8, mode="r") if os.path.getsize(self._tmp.name) else None
        self._frames = self._parse()

    def _parse(self) -> list[np.ndarray]:
        """Views of every PPM picture in the stream (sizes may change from one picture to the next)."""
        frames, at, data = [], 0, self._data
        while data is not None and at < len(data):
            fields, pos = [], at
            while len(fields) < 4:  # "P6", width, height, maxval, separated by single whitespace
                end = pos
                while data[end] not in b" \n\t\r":
                    end += 1
                fields.append(bytes(data[pos:end]))
                pos = end + 1
            width, height = int(fields[1]), int(fields[2])
            frames.append(data[pos:pos + width * height * 3].reshape(height, width, 3))
            at = pos + width * height * 3
        return frames

    def __len__(self) -> int:
        return len(self._frames)

    def __getitem__(self, i: int) -> np.ndarray:
        return self._frames[i]

    def close(self) -> None:
        self._frames, self._data = [], None
        self._tmp.close()


def _reads(num_frames: int, rng: np.random.Generator) -> list[tuple[str, np.ndarray]]:
    """(name, indices) of the reads checked on one reader: sequential chunks, random singles, random clips,
    multi-view clips."""
    reads = [(f"frames {s}-{min(s + SEQUENTIAL_CHUNK, num_frames) - 1}", np.arange(s, min(s + SEQUENTIAL_CHUNK,
                                                                                           num_frames)))
             for s in range(0, num_frames, SEQUENTIAL_CHUNK)]
    reads += [(f"frame {i}", np.array([i])) for i in rng.integers(0, num_frames, size=min(8, num_frames))]
    for frames, stride in ((8, 2), (16, 1), (4, 5)):
        reads.append((f"random clip T={frames} tau={stride}", random_clip(ClipSpec(frames, stride), num_frames, rng)))
    reads.append(("3 uniform views T=8 tau=4", uniform_clips(ClipSpec(8, 4), num_frames, views=3).reshape(-1)))
    return reads


def _fresh_reads(num_frames: int, rng: np.random.Generator) -> list[tuple[str, np.ndarray]]:
    """(name, indices) of the reads checked each on a newly opened reader: random clips, the last frame."""
    reads = [("newly opened, random clip T=8 tau=4", random_clip(ClipSpec(8, 4), num_frames, rng)) for _ in range(2)]
    return reads + [("newly opened, last frame", np.array([num_frames - 1]))]


def _first_mismatch(got, truth: FFmpegFrames, indices: np.ndarray, tolerance: float) -> tuple[int | None, float]:
    """(first index whose frame differs beyond ``tolerance``, or None; largest mean absolute difference)."""
    worst = 0.0
    for frame, i in zip(got, indices):
        expected = truth[int(i)]
        if frame.shape != expected.shape:
            return int(i), float("inf")
        diff = float(np.abs(frame.astype(np.int16) - expected).mean())
        worst = max(worst, diff)
        if diff > tolerance:
            return int(i), worst
    return None, worst


def check_backend(path: str, backend: str, truth: FFmpegFrames, seed: int = 0, autorotate: bool = True) -> Verdict:
    """One file x backend verdict against FFmpeg's pictures ``truth``."""
    verdict = Verdict(str(path), backend, "exact", frames=len(truth))
    tolerance = TOLERANCE.get(backend, 0.0)
    try:
        with open_video(path, backend=backend, cache_dir=False, autorotate=autorotate) as video:
            if video.num_frames != len(truth):
                return Verdict(str(path), backend, "wrong", f"num_frames {video.num_frames}, FFmpeg decodes "
                               f"{len(truth)}", len(truth))
            rng = np.random.default_rng(seed)
            reads = [(name, indices, video) for name, indices in _reads(video.num_frames, rng)]
            reads += [(name, indices, None) for name, indices in _fresh_reads(video.num_frames, rng)]
            for name, indices, reader in reads:
                if reader is None:  # the same index, a new decoder
                    with type(video)(path, video.index, autorotate=autorotate) as fresh:
                        got = fresh.get_frames(indices).data.numpy()
                else:
                    got = reader.get_frames(indices).data.numpy()
                bad, worst = _first_mismatch(got, truth, indices, tolerance)
                verdict.max_diff = max(verdict.max_diff, worst)
                if bad is not None:
                    verdict.status, verdict.detail = "wrong", f"frame {bad} differs from FFmpeg's ({name})"
                    return verdict
    except VideoDecodeError as e:
        verdict.status, verdict.detail = "refused", e.reason
    verdict.max_diff = round(verdict.max_diff, 3)
    return verdict


def check_file(path: str | os.PathLike, backends: tuple[str, ...], seed: int = 0,
               autorotate: bool = True) -> list[Verdict]:
    """Verdicts of every backend on one file. A file FFmpeg itself decodes nothing of must be refused by all."""
    truth = FFmpegFrames(path, autorotate=autorotate)
    try:
        return [check_backend(str(path), backend, truth, seed, autorotate) for backend in backends]
    finally:
        truth.close()


def _check_one(job) -> list[Verdict]:
    path, backends, autorotate = job
    try:
        return check_file(path, backends, autorotate=autorotate)
    except VideoDecodeError as e:  # FFmpeg itself could not be run to the end on it
        return [Verdict(str(path), b, "refused", f"ground truth: {e.reason}") for b in backends]


def conformance(paths, backends: tuple[str, ...], num_workers: int = 1, autorotate: bool = True) -> list[Verdict]:
    """Verdicts for every file x backend, files in parallel, in the order given."""
    jobs = [(str(p), backends, autorotate) for p in paths]
    if num_workers <= 1:
        return [v for verdicts in map(_check_one, jobs) for v in verdicts]
    with process_pool(num_workers) as pool:
        return [v for verdicts in pool.map(_check_one, jobs, chunksize=1) for v in verdicts]


def format_table(verdicts: list[Verdict], root: Path | None = None) -> str:
    """A Markdown table: file x backend -> verdict."""
    backends = list(dict.fromkeys(v.backend for v in verdicts))
    rows: dict[str, dict[str, Verdict]] = {}
    for v in verdicts:
        rows.setdefault(v.path, {})[v.backend] = v
    lines = ["| file | frames | " + " | ".join(backends) + " |", "|---|---|" + "---|" * len(backends)]
    for path, by_backend in rows.items():
        name = os.path.relpath(path, root) if root else path
        cells = []
        for b in backends:
            v = by_backend.get(b)
            cells.append("" if v is None else v.status + (f": {v.detail}" if v.detail else ""))
        frames = next(iter(by_backend.values())).frames
        lines.append(f"| {name} | {frames} | " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(lines)
