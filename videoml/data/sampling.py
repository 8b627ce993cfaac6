"""Clip sampling in frame indices: which frames of a video make a clip.

A clip is ``frames`` (T) frames, either ``stride`` (τ) frames apart in the source, or at a target ``fps`` read off the
frames' time stamps (so variable-frame-rate files are sampled by real time). Samplers return integer arrays of frame
indices, shape (T,) or (K, T), for :meth:`VideoReader.get_frames` / :meth:`VideoReader.get_clips`, which decode every
distinct frame once however many clips share it.

PyTorchVideo's samplers work in seconds and can return one frame more or less than asked (pytorchvideo #155, #61);
these work in frames and always return exactly T. Names and semantics map onto PyTorchVideo's as follows:

================  ==========================================  ================================================
here              PyTorchVideo                                 semantics
================  ==========================================  ================================================
random_clip       RandomClipSampler                            start uniform over every start that fits
random_clips      RandomMultiClipSampler                       ``count`` independent random clips
uniform_clips     ConstantClipsPerVideoSampler (test views)    starts evenly spaced from the first to the last
                                                               start that fits, both included; one view starts at
                                                               frame 0 (as PyTorchVideo and PySlowFast do)
dense_clips       UniformClipSampler                           every ``step`` frames, plus one clip ending at the
                                                               video's end so the tail is covered
================  ==========================================  ================================================

A video shorter than a clip is padded, never returns fewer frames: ``pad="repeat_last"`` (default) repeats the last
frame, ``pad="loop"`` continues from the first frame.

The ``video`` argument is the video's frame count, or its frame time stamps in seconds (``reader.timestamps``),
which a clip with a target ``fps`` needs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from videoml.vocab import check

PAD_MODES = ("repeat_last", "loop")


@dataclass(frozen=True)
class ClipSpec:
    frames: int  # T: frames per clip
    stride: int = 1  # τ: source frames between clip frames (ignored when fps is set)
    fps: float | None = None  # sample at this rate, by time stamps, instead of by stride
    pad: str = "repeat_last"

    def __post_init__(self):
        if self.frames < 1 or self.stride < 1:
            raise ValueError(f"clip frames and stride must be >= 1, got {self.frames} and {self.stride}")
        if self.fps is not None and self.fps <= 0:
            raise ValueError(f"clip fps must be > 0, got {self.fps}")
        check(self.pad, PAD_MODES, "pad", ValueError)


def _timeline(spec: ClipSpec, video: int | np.ndarray) -> tuple[int, np.ndarray | None]:
    if np.ndim(video) == 0:
        if spec.fps is not None:
            raise ValueError("a clip with a target fps needs the frames' time stamps, not a frame count")
        n, stamps = int(video), None
    else:
        stamps = np.asarray(video, dtype=np.float64)
        n = len(stamps)
    if n < 1:
        raise ValueError("a video with no frames has no clips")
    return n, stamps


def last_start(spec: ClipSpec, video: int | np.ndarray) -> int:
    """The last first frame from which a whole clip fits in the video (0 when none fits: the clip is padded)."""
    n, stamps = _timeline(spec, video)
    if spec.fps is None:
        return max(n - ((spec.frames - 1) * spec.stride + 1), 0)
    latest = stamps[-1] - (spec.frames - 1) / spec.fps
    return max(int(np.searchsorted(stamps, latest + 1e-9, side="right")) - 1, 0)


def fits(spec: ClipSpec, video: int | np.ndarray) -> bool:
    """Whether a whole clip fits in the video (else clips are padded, see ``ClipSpec.pad``)."""
    n, stamps = _timeline(spec, video)
    if spec.fps is None:
        return n >= (spec.frames - 1) * spec.stride + 1
    return stamps[-1] - stamps[0] >= (spec.frames - 1) / spec.fps - 1e-9


def clip_at(spec: ClipSpec, video: int | np.ndarray, start: int) -> np.ndarray:
    """The clip whose first frame is ``start``: T frame indices, padded past the video's end."""
    n, stamps = _timeline(spec, video)
    steps = np.arange(spec.frames)
    if spec.fps is None:
        idx = start + spec.stride * steps
        return np.minimum(idx, n - 1) if spec.pad == "repeat_last" else idx % n
    times = stamps[start] + steps / spec.fps
    if spec.pad == "loop":
        period = stamps[-1] - stamps[0] + (stamps[-1] - stamps[0]) / max(n - 1, 1)
        times = stamps[0] + (times - stamps[0]) % period if period > 0 else np.full_like(times, stamps[0])
    # the frame on screen at each time: the last one that started at or before it
    return np.maximum(np.searchsorted(stamps, times + 1e-9, side="right") - 1, 0)


def _generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def random_clip(spec: ClipSpec, video: int | np.ndarray, rng: np.random.Generator | int | None = None) -> np.ndarray:
    """One clip, its start uniform over every start that fits. Shape (T,)."""
    return random_clips(spec, video, 1, rng)[0]


def random_clips(spec: ClipSpec, video: int | np.ndarray, count: int,
                 rng: np.random.Generator | int | None = None) -> np.ndarray:
    """``count`` independent random clips. Shape (count, T)."""
    starts = _generator(rng).integers(0, last_start(spec, video) + 1, size=count)
    return np.stack([clip_at(spec, video, int(s)) for s in starts])


def uniform_clips(spec: ClipSpec, video: int | np.ndarray, views: int) -> np.ndarray:
    """``views`` clips with evenly spaced starts, first and last start included (test-time views). (views, T)."""
    if views < 1:
        raise ValueError(f"views must be >= 1, got {views}")
    end = last_start(spec, video)
    starts = np.rint(np.linspace(0, end, views)).astype(int) if views > 1 else np.zeros(1, dtype=int)
    return np.stack([clip_at(spec, video, int(s)) for s in starts])


def dense_clips(spec: ClipSpec, video: int | np.ndarray, step: int | None = None) -> np.ndarray:
    """Clips starting every ``step`` frames (default: back to back), plus one ending at the video's end. (K, T)."""
    end = last_start(spec, video)
    if step is None:
        first = clip_at(spec, video, 0)
        step = max(int(first[-1] - first[0]) + 1, 1)
    if step < 1:
        raise ValueError(f"step must be >= 1, got {step}")
    starts = list(range(0, end + 1, step))
    if starts[-1] != end:
        starts.append(end)
    return np.stack([clip_at(spec, video, s) for s in starts])
