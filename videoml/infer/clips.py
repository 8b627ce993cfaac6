"""The clips of whole videos for inference, decoded in DataLoader workers: one item per video, every view at once.

A video's clips are its ``views`` temporal views (evenly spaced, :func:`uniform_clips`) or, in dense mode, clips every
``dense_step`` seconds over the whole video (:func:`dense_clips`), each cut into ``crops`` spatial crops. All of a
video's frames are decoded in one call, so frames shared by overlapping clips are decoded once.

A video that cannot be read gives an item with ``error`` set instead of clips: the caller records it and goes on.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset, get_worker_info

from videoml.data import transforms
from videoml.data.decoding import open_video
from videoml.data.decoding.budget import time_budget
from videoml.data.sampling import ClipSpec, dense_clips, uniform_clips
from videoml.errors import VideoDecodeError, first_line
from videoml.processes import dead_workers_reported_by_next, items_of_dead_workers, worker_init
from videoml.spec import InputSpec

log = logging.getLogger("videoml.infer")


@dataclass
class VideoItem:
    """One video's clips for inference, or the error that kept it from being read."""

    index: int  # position in the run's list
    path: str
    error: str | None = None
    video: torch.Tensor | list[torch.Tensor] | None = None  # uint8 (clips * crops, C, T, H, W); SlowFast [slow, fast]
    clips: int = 0  # views (or dense clips) x crops
    crops: int = 1
    starts: torch.Tensor | None = None  # each clip's first frame's time, seconds from the video's first frame
    ends: torch.Tensor | None = None  # and when its last frame stops being shown
    decode_s: float = 0.0
    replaced_frames: list = field(default_factory=list)
    outputs: list[torch.Tensor] = field(default_factory=list)  # the model's, filled in batches
    model_s: float = 0.0

    def pin_memory(self) -> "VideoItem":
        """Pinned clips, for the DataLoader's pin_memory (CUDA): copied to the device asynchronously."""
        if self.video is not None:
            self.video = [v.pin_memory() for v in self.video] if isinstance(self.video, list) else \
                self.video.pin_memory()
        return self


class VideoClips(Dataset):
    def __init__(self, paths: list[str | os.PathLike], spec: InputSpec, views: int = 1, crops: int = 1,
                 dense_step: float | None = None, backend: str = "pyav", decode_timeout: float | None = None):
        self.paths, self.spec, self.views, self.crops = [str(p) for p in paths], spec, views, crops
        self.dense_step, self.backend, self.decode_timeout = dense_step, backend, decode_timeout
        self.current = None  # shared array set by decoded_items
        self.clip = ClipSpec(spec.frames, spec.stride, fps=spec.fps)

    def __len__(self) -> int:
        return len(self.paths)

    def clip_indices(self, timestamps: np.ndarray) -> np.ndarray:
        """(K, T) frame indices of a video's clips."""
        if self.dense_step is None:
            return uniform_clips(self.clip, timestamps, self.views)
        duration = timestamps[-1] - timestamps[0]
        fps = (len(timestamps) - 1) / duration if duration > 0 else 1.0
        return dense_clips(self.clip, timestamps, max(int(round(self.dense_step * fps)), 1))

    def __getitem__(self, index: int) -> VideoItem:
        if self.current is not None:
            info = get_worker_info()
            self.current[info.id if info else 0] = index  # for decoded_items: who was reading what
        return self.read(index, self.paths[index])

    def read(self, index: int, path: str) -> VideoItem:
        """The clips of the video at ``path`` (item ``index`` of a run), or the error that kept it from being read."""
        started = time.perf_counter()
        try:
            with time_budget(self.decode_timeout, path), open_video(path, self.backend, threads=1,
                                                                     bad_frames="nearest") as video:
                clips = self.clip_indices(video.timestamps)
                frames = transforms.evaluation_frames(video, clips, self.spec)  # (K, T, H, W, 3), with times
                replaced = video.replaced  # damaged pictures stood in for by their neighbours
                zero = float(video.timestamps[0])
        except VideoDecodeError as e:
            return VideoItem(index, path, str(e))
        except Exception as e:  # a batch job records any failure of one file and goes on
            return VideoItem(index, path, f"{path}: {type(e).__name__}: {e}")
        crops = torch.stack([transforms.evaluation_crops(f, self.spec, self.crops) for f in frames.data])
        layout = transforms.to_model_layout(crops.flatten(0, 1))  # (K * crops, C, T, s, s)
        return VideoItem(index, path, None, transforms.pack_pathways(layout, self.spec.slowfast_alpha), len(layout),
                         self.crops, frames.pts_seconds[:, 0] - zero,
                         frames.pts_seconds[:, -1] + frames.duration_seconds[:, -1] - zero,
                         time.perf_counter() - started, replaced)


def _loader(dataset: VideoClips, indices: list[int], num_workers: int, pin_memory: bool) -> DataLoader:
    return DataLoader(Subset(dataset, indices), batch_size=None, shuffle=False, num_workers=num_workers,
                      worker_init_fn=worker_init, prefetch_factor=4 if num_workers else None, pin_memory=pin_memory)


def decoded_items(dataset: VideoClips, num_workers: int, pin_memory: bool = False) -> Iterator[VideoItem]:
    """``dataset``'s items in order, decoded in ``num_workers`` DataLoader workers.

    A worker that dies (a crash inside a decoder on some file, an out-of-memory kill) would end the DataLoader and
    the run. Here the video it was decoding becomes an error item naming the cause, and a fresh loader goes on with
    the videos not yet delivered; every video is delivered exactly once.
    """
    dataset.current = multiprocessing.Array("q", [-1] * max(num_workers, 1))  # per worker: the index it decodes
    todo, delivered = list(range(len(dataset))), set()
    while todo:
        loader = _loader(dataset, todo, num_workers, pin_memory)
        iterator = iter(loader)
        dead_workers_reported_by_next()
        try:
            for item in iterator:
                delivered.add(item.index)
                yield item
            return
        # torch: "DataLoader worker (pid(s) N) exited unexpectedly"; or the worker died while handing over a tensor
        except (RuntimeError, ConnectionError, EOFError) as e:
            dead = items_of_dead_workers(iterator, dataset.current)
            culprit = next((i for i in dead if i in todo and i not in delivered), None)
            if culprit is None:
                raise
            delivered.add(culprit)
            todo = [i for i in todo if i not in delivered]
            path = dataset.paths[culprit]
            yield VideoItem(culprit, path, f"{path}: the decoding process died reading it ({first_line(e)})")
