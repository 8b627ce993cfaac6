"""What both inference engines (this machine's, :mod:`videoml.infer.run`, and Ray's, :mod:`videoml.infer.ray_engine`)
share: the batcher that packs the clips of consecutive videos into the model's batches, and the run's summary."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import torch

from videoml.infer.clips import VideoItem
from videoml.infer.predictor import Predictor
from videoml.profiling import Profile

log = logging.getLogger("videoml.infer")


@dataclass
class Summary:
    done: int = 0
    failed: int = 0
    skipped: int = 0
    clips: int = 0
    seconds: float = 0.0
    message: str | None = None  # what the kind of run has to add (e.g. infer's report)

    def add(self, record: dict) -> None:
        """Count a video's record; a failed video's error is also logged, one line."""
        if record["status"] == "ok":
            self.done += 1
            self.clips += record["clips"]
        else:
            log.warning("%s", record["error"])
            self.failed += 1

    def line(self) -> str:
        rate = self.done / self.seconds if self.seconds else 0.0
        clip_rate = self.clips / self.seconds if self.seconds else 0.0
        return (f"{self.done} done, {self.failed} failed, {self.skipped} skipped (already in the output) in "
                f"{self.seconds:.1f} s: {rate:.2f} videos/s, {clip_rate:.1f} clips/s")


def _slice(video, start: int, stop: int):
    return [v[start:stop] for v in video] if isinstance(video, list) else video[start:stop]


def _cat(parts: list):
    if isinstance(parts[0], list):
        return [torch.cat([p[i] for p in parts]) for i in range(len(parts[0]))]
    return torch.cat(parts)


class Batcher:
    """Packs the clips of consecutive videos into batches of ``size``; gives back videos whose clips are all scored,
    in input order."""

    def __init__(self, predictor: Predictor, size: int, profile: Profile | None):
        self.predictor, self.size, self.profile = predictor, size, profile
        self.videos: list[dict] = []  # waiting for scores, in order
        self.queue: list[tuple[dict, int]] = []  # (video, first clip not yet batched)
        self.queued = 0

    def add(self, item: VideoItem) -> None:
        """A video's clips, or a video that could not be read (no clips: given back in its turn, its record in
        input order with the others')."""
        self.videos.append(item)
        if item.clips:
            self.queue.append((item, 0))
            self.queued += item.clips

    def ready(self, final: bool = False) -> list[dict]:
        while self.queued >= self.size or (final and self.queued):
            self._run_batch()
        finished = []
        while self.videos and sum(len(x) for x in self.videos[0].outputs) == self.videos[0].clips:
            finished.append(self.videos.pop(0))
        return finished

    def _run_batch(self) -> None:
        parts, owners, room = [], [], self.size
        while room and self.queue:
            item, start = self.queue[0]
            take = min(room, item.clips - start)
            parts.append(_slice(item.video, start, start + take))
            owners.append((item, take))
            room -= take
            if start + take == item.clips:
                self.queue.pop(0)
            else:
                self.queue[0] = (item, start + take)
        started = time.perf_counter()
        outputs = self.predictor(_cat(parts))
        elapsed = time.perf_counter() - started
        if self.profile:
            self.profile.step()
        batch = sum(n for _, n in owners)
        self.queued -= batch
        offset = 0
        for item, n in owners:
            item.outputs.append(outputs[offset:offset + n])
            item.model_s += elapsed * n / batch
            offset += n
