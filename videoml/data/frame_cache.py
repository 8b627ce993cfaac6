"""Decoded videos kept in memory: training on a data set small enough to fit decodes each video once.

A loader process that sees a video again (every epoch) takes its frames from memory instead of opening and decoding
the file: the frames are the ones the reader returned the first time (the whole video, at the size training decodes
it), so the clips are the same as without the cache. The cache is per loader process and bounded in bytes (least
recently used videos leave first); with several loader workers each fills its own, so it pays where the decoded set
fits in memory once per worker (the demo's: 420 videos of 48 frames at 88x88, about 0.5 GB).
"""

from __future__ import annotations

import numpy as np
import torch

from videoml.data.decoding.reader import FrameBatch, frame_batch, output_size
from videoml.data.decoding.lru import LRU


class DecodedVideo:
    """The part of a reader's interface training needs, over frames in memory."""

    def __init__(self, frames: torch.Tensor, timestamps: np.ndarray, size: int | None):
        self.frames, self.timestamps, self.size = frames, timestamps, size
        self.num_frames = len(frames)
        self.height, self.width = frames.shape[1:3]

    def get_frames(self, indices, size: int | None = None) -> FrameBatch:
        if size != self.size:
            raise ValueError(f"frames were kept at size {self.size}, not {size}")
        return frame_batch(self.frames[torch.as_tensor(np.asarray(indices), dtype=torch.long)], indices,
                           self.timestamps)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class DecodedVideos:
    """Up to ``max_bytes`` of decoded videos by key, least recently used first out."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.videos: LRU[DecodedVideo] = LRU(max_bytes, weight=lambda video: video.frames.numel())

    @property
    def bytes(self) -> int:
        return self.videos.total

    def get(self, key) -> DecodedVideo | None:
        return self.videos.get(key)

    def keep(self, key, reader, size: int | None) -> DecodedVideo | None:
        """Decode all of ``reader`` at ``size`` (short side; None: as stored) and keep it; None (nothing kept) when
        the video alone would take over a quarter of the cache."""
        width, height = output_size(size, reader.width, reader.height) or (reader.width, reader.height)
        if reader.num_frames * 3 * width * height > self.max_bytes // 4:
            return None
        frames = reader.get_frames(np.arange(reader.num_frames), size=size).data
        return self.videos.put(key, DecodedVideo(frames, reader.timestamps, size))
