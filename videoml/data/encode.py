"""Encoding RGB frames into video files with FFmpeg's encoders through PyAV: the synthetic set and prepared data sets.

One place decides how frames become a file: the codec and its options, the key frame interval, B-frames, pixel
format, time stamps (kept exact on MPEG's 90 kHz clock, so variable frame rates survive), and writing aside then
renaming, so that a file under its final name is always complete.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np


@dataclass(frozen=True)
class Codec:
    encoder: str
    suffix: str
    format: str
    options: dict
    bit_rate: int | None = None  # for encoders without a constant-quality option
    variable_rate: bool = True  # False: the container stores frames by index (AVI), so no VFR and no start offset


CODECS: dict[str, Codec] = {
    "h264": Codec("libx264", ".mp4", "mp4", {"preset": "fast", "crf": "20"}),
    # closed GOPs (x265 opens them by default): every key frame is a place to start decoding, for every backend
    "hevc": Codec("libx265", ".mp4", "mp4",
                  {"preset": "fast", "crf": "24", "x265-params": "log-level=error:open-gop=0"}),
    "mpeg4": Codec("mpeg4", ".avi", "avi", {}, bit_rate=600_000, variable_rate=False),
    "vp9": Codec("libvpx-vp9", ".webm", "webm", {"crf": "32", "b": "0", "deadline": "good", "cpu-used": "8"}),
}
TIME_BASE = Fraction(1, 90000)  # MPEG's clock: exact for 24, 25, 30, 30000/1001, 60, ... fps


@dataclass(frozen=True)
class Encoding:
    """How frames are encoded. ``options`` are the encoder's own (FFmpeg's ``-crf``, ``-preset``, ``-tune``, ...),
    over the codec's defaults."""

    codec: str = "h264"
    frame_rate: Fraction = Fraction(30)  # nominal; the frames' own times decide when each is shown
    gop: int = 16  # a key frame every this many frames
    bframes: int = 2
    pix_fmt: str = "yuv420p"
    rotation: int = 0  # a display matrix, degrees counter-clockwise
    options: dict = field(default_factory=dict)


def encode_video(frames: Iterable[np.ndarray], times: Sequence[float], path: str | os.PathLike,
                 encoding: Encoding) -> int:
    """Encode RGB ``frames`` (H, W, 3 uint8, all one size) shown at ``times`` (seconds, increasing) into ``path``,
    atomically (written aside, then renamed). Returns the number of frames written."""
    import av  # imported here: planning and reading manifests need no FFmpeg

    codec = CODECS[encoding.codec]
    if codec.variable_rate:
        time_base = TIME_BASE
        pts = [round(t / time_base) for t in times]
    else:
        time_base = 1 / encoding.frame_rate
        pts = list(range(len(times)))
    # Every packet carries its frame's duration (the time to the next frame; the last frame lasts one nominal frame
    # interval), so the container's end is the last frame's end: readers that bound time by it (torchcodec) reach
    # the last frame, and frame counts derived from the duration (decord) are right.
    last = max(1, round(1 / (encoding.frame_rate * time_base)))
    durations = dict(zip(pts, [b - a for a, b in zip(pts, pts[1:])] + [last]))
    frames = iter(frames)
    first = next(frames)
    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    count = 0
    with av.open(str(tmp), mode="w", format=codec.format) as container:
        stream = container.add_stream(codec.encoder, rate=encoding.frame_rate,
                                      options={**codec.options, **encoding.options})
        stream.height, stream.width = first.shape[:2]
        stream.pix_fmt = encoding.pix_fmt
        if encoding.rotation:
            stream.set_display_rotation(encoding.rotation)
        ctx = stream.codec_context
        ctx.time_base = time_base
        ctx.gop_size = encoding.gop
        # One frame has nothing to reorder, and x265 then gives its packet a decoding time stamp the MP4 muxer rejects
        ctx.max_b_frames = encoding.bframes if len(pts) > 1 else 0
        ctx.thread_count = 1  # deterministic output; parallelism comes from encoding many files at once
        if codec.bit_rate:
            ctx.bit_rate = codec.bit_rate
        for array, p in zip(itertools.chain([first], frames), pts):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format="rgb24")
            frame = frame.reformat(format=encoding.pix_fmt)
            frame.pts, frame.time_base = p, time_base
            container.mux(_with_durations(stream.encode(frame), durations))
            count += 1
        container.mux(_with_durations(stream.encode(None), durations))
    os.replace(tmp, path)
    return count


def _with_durations(packets, durations: dict[int, int]):
    """``packets`` with their frames' durations (encoders leave them unset), in the encoder's time base."""
    for packet in packets:
        packet.duration = durations.get(packet.pts, packet.duration)
    return packets
