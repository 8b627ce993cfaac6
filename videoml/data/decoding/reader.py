"""What every backend's reader shares: the frame index, index checks, output sizes, bad-frame policy, assembly."""

from __future__ import annotations

import logging
import os
from typing import NamedTuple, Sequence

import numpy as np
import torch

from videoml.data.decoding.index import FrameIndex
from videoml.errors import VideoDecodeError
from videoml.vocab import check

log = logging.getLogger("videoml.decoding")

# What to do with frames that were asked for but did not decode (corrupt or truncated data):
#   "error":   raise VideoDecodeError naming the file and the frames.
#   "nearest": return the nearest frame (in presentation order) that did decode in the same call, log a warning,
#              and list the replaced indices in ``reader.replaced``.
BAD_FRAME_POLICIES = ("error", "nearest")


class FrameBatch(NamedTuple):
    """Frames and when they are shown (torchcodec's ``FrameBatch``): ``data`` uint8 RGB (..., H, W, 3); per frame
    (the leading shape of ``data``) its presentation time and how long it is shown, in seconds from the stream's
    zero (float64). A frame is shown until the next one; the last for the stream's mean frame time."""

    data: torch.Tensor
    pts_seconds: torch.Tensor
    duration_seconds: torch.Tensor


def frame_batch(data: torch.Tensor, indices, timestamps: np.ndarray) -> FrameBatch:
    """``data``, frames ``indices`` (any shape: the leading shape of ``data``) of a video whose frames are shown at
    ``timestamps`` (seconds, in frame order), with their times."""
    timestamps = np.asarray(timestamps, dtype=np.float64)
    mean = (timestamps[-1] - timestamps[0]) / (len(timestamps) - 1) if len(timestamps) > 1 else 0.0
    shown = np.append(np.diff(timestamps), mean)
    indices = np.asarray(indices, dtype=np.int64)
    return FrameBatch(data, torch.from_numpy(timestamps[indices]), torch.from_numpy(shown[indices]))


def output_size(size: int | tuple[int, int] | None, width: int, height: int) -> tuple[int, int] | None:
    """(width, height) of returned frames: ``None`` keeps the source size, an int is the short side (aspect kept,
    rounded to even), a pair is ``(height, width)`` exactly (torchvision's order)."""
    if size is None:
        return None
    if isinstance(size, int):
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        scale = size / min(width, height)
        w, h = (size, round(height * scale / 2) * 2) if width <= height else (round(width * scale / 2) * 2, size)
        return max(w, 2), max(h, 2)
    h, w = size
    if h < 1 or w < 1:
        raise ValueError(f"size must be positive, got {size}")
    return int(w), int(h)


def resize_frames(frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """uint8 (N, H, W, 3) frames scaled to ``size`` (width, height): bilinear with antialias, like torchvision's
    Resize, for backends that cannot scale while they convert."""
    w, h = size
    x = frames.permute(0, 3, 1, 2).float()
    x = torch.nn.functional.interpolate(x, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
    return x.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1)


class VideoReader:
    """Frames of one video by index. Use :func:`videoml.data.decoding.open_video` to make one.

    Frame ``i`` is the ``i``-th picture FFmpeg's decoder outputs (the file's :class:`FrameIndex`), whatever the
    backend. With ``autorotate`` (the default, as FFmpeg's command line) pictures are turned upright by the file's
    display matrix, and ``width``/``height`` are those of the upright pictures.
    """

    backend = "?"

    def __init__(self, path: str | os.PathLike, index: FrameIndex, threads: int = 1, bad_frames: str = "error",
                 autorotate: bool = True):
        check(bad_frames, BAD_FRAME_POLICIES, "bad_frames policy", ValueError)
        self.source = path  # a file's path, or a VideoBytes
        self.path = str(path)  # what messages call it
        self.index = index
        self.threads = threads
        self.bad_frames = bad_frames
        self.autorotate = autorotate
        self.replaced: list[int] = []  # frames of the last call that were replaced (policy "nearest")
        self._primed: set = set()  # output sizes whose decoder has seen the first packet (FrameIndex.needs_primer)
        self.damaged: list[int] = []  # frames of the last call the decoder flagged as damaged (not returned)

    # --- what a video is ---
    @property
    def num_frames(self) -> int:
        return self.index.num_frames

    @property
    def fps(self) -> float:
        return self.index.fps

    @property
    def duration(self) -> float:
        return self.index.duration

    @property
    def width(self) -> int:
        return self.index.display_size(self.autorotate)[0]

    @property
    def height(self) -> int:
        return self.index.display_size(self.autorotate)[1]

    @property
    def rotation(self) -> int:
        """Degrees (counter-clockwise) the display matrix turns the stored pictures; applied when ``autorotate``."""
        return self.index.rotation

    @property
    def timestamps(self) -> np.ndarray:
        return self.index.timestamps

    # --- frames ---
    def get_frames(self, indices: Sequence[int] | np.ndarray | torch.Tensor,
                   size: int | tuple[int, int] | None = None) -> FrameBatch:
        """Frames ``indices`` (any order, repeats allowed): ``data`` a uint8 RGB tensor of shape (T, H, W, 3), with
        their time stamps (:class:`FrameBatch`).

        Each distinct frame is decoded once. ``size``: see :func:`output_size`; frames are scaled while they are
        converted to RGB.
        """
        wanted = np.asarray(indices, dtype=np.int64).reshape(-1)
        if wanted.size == 0:
            raise ValueError(f"{self.path}: no frame indices given")
        bad = wanted[(wanted < 0) | (wanted >= self.num_frames)]
        if bad.size:
            raise IndexError(f"{self.path}: frame {int(bad[0])} out of range (the video has {self.num_frames} frames)")
        unique = np.unique(wanted)
        out_size = output_size(size, self.width, self.height)
        if self.index.needs_primer and out_size not in self._primed and self.index.key_before[unique[-1]] > 0:
            self._decode(np.zeros(1, np.int64), out_size)  # frame 0: the decoder reads the first packet (decord
            self._primed.add(out_size)                     # keeps a decoder per output size)
        self.damaged = []
        decoded = self._decode(unique, out_size)
        missing = [int(i) for i in unique if int(i) not in decoded]
        self.replaced = self._handle_missing(missing, decoded)
        return frame_batch(torch.from_numpy(np.stack([decoded[int(i)] for i in wanted])), wanted, self.timestamps)

    def get_clips(self, clips: np.ndarray, size: int | tuple[int, int] | None = None) -> FrameBatch:
        """Several clips of frame indices, shape (K, T), as (K, T, H, W, 3) with their time stamps (K, T); shared
        frames are decoded once."""
        clips = np.asarray(clips)
        frames = self.get_frames(clips.reshape(-1), size).data
        return frame_batch(frames.reshape(*clips.shape, *frames.shape[1:]), clips, self.timestamps)

    def _handle_missing(self, missing: list[int], decoded: dict[int, np.ndarray]) -> list[int]:
        if not missing:
            return []
        shown = ", ".join(map(str, missing[:8])) + (" ..." if len(missing) > 8 else "")
        if self.bad_frames == "error" or not decoded:
            raise VideoDecodeError(self.path, f"{len(missing)} frame(s) could not be decoded: {shown}")
        good = np.array(sorted(decoded))
        for i in missing:
            decoded[i] = decoded[int(good[np.argmin(np.abs(good - i))])]
        log.warning("%s: %d frame(s) could not be decoded and were replaced by the nearest decoded frame: %s",
                    self.path, len(missing), shown)
        return missing

    def _decode(self, wanted: np.ndarray, size: tuple[int, int] | None) -> dict[int, np.ndarray]:
        """Decode the sorted, distinct frames ``wanted``: {index: (H, W, 3) uint8}. Frames that fail are left out."""
        raise NotImplementedError

    # --- resources ---
    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return (f"{type(self).__name__}({self.path!r}, frames={self.num_frames}, fps={self.fps:.3f}, "
                f"size={self.width}x{self.height}, codec={self.index.codec})")
