"""tf.data over the PyTorch side's clip data set: the same videos, clip indices, frames and augmentation.

Each element is one sample of :class:`videoml.data.clips.ClipDataset` (decoding, clip sampling, scale jitter,
crop and flip are that code, drawing from the same per-sample generator seeded by (seed, epoch, index)), in the same
order as the PyTorch side's :class:`~videoml.data.clips.ShardSampler` gives for one process, only laid out
channels-last: (T, H, W, 3) for training, (crops, T, H, W, 3) for evaluation, uint8. tf.data runs the loading in
``parallel`` threads (decoding releases the GIL in FFmpeg), keeps the order (``deterministic=True``), batches and
prefetches; normalisation happens on the device, in the model (:class:`videoml.tf.layers.Normalize`), as on the
PyTorch side.

With ``clips_per_video`` k > 1 (repeated sampling) an element holds a video's k clips and is unbatched into k
clips before batching, so a batch is the same clips in the same order as on the PyTorch side
(:func:`~videoml.data.clips.flatten_repeats`).

A MirroredStrategy splits each global batch between its replicas, so the data order does not depend on the number
of devices.
"""

from __future__ import annotations

import threading

import numpy as np
import tensorflow as tf

from videoml.data.clips import ClipDataset, SampleKey, epoch_order


class ClipPipeline:
    """Batches of one split as tf.data, an epoch at a time. ``bad`` collects the indices (into the video list) of
    videos that could not be decoded, as the PyTorch side's training loop counts them."""

    def __init__(self, clips: ClipDataset, batch_size: int, parallel: int = 2, seed: int = 0):
        self.clips, self.batch_size, self.parallel, self.seed = clips, batch_size, max(parallel, 1), seed
        self.bad: set[int] = set()
        self._lock = threading.Lock()

    @property
    def samples(self) -> int:
        """Clips in an epoch: every (video, view) or (video, repeat) once."""
        return len(self.clips) * self.clips.repeats

    @property
    def steps(self) -> int:
        return -(-self.samples // self.batch_size)

    def order(self, epoch: int) -> list[int]:
        """The sample keys (index, epoch, padding flag: ``SampleKey``) of one epoch, in order."""
        return epoch_order(self.clips, epoch, shuffle=self.clips.train, seed=self.seed)

    def _load(self, key):
        sample = self.clips[SampleKey.of(key)]
        if np.any(np.asarray(sample.bad)):
            with self._lock:
                self.bad.update(np.atleast_1d(np.asarray(sample.video_index)).tolist())
        video = np.ascontiguousarray(np.moveaxis(sample.video.numpy(), -4, -1))  # (..., C, T, H, W) -> (..., C)
        return (video, *(np.asarray(getattr(sample, key), dtype) for key, dtype in
                         (("label", np.int32), ("weight", np.float32), ("video_index", np.int32), ("bad", np.bool_))))

    def epoch(self, epoch: int = 0) -> tf.data.Dataset:
        """Batches of dicts: ``video`` (uint8, channels-last), ``label``, ``weight``, ``video_index``, ``bad``."""
        spec = self.clips.spec
        side = spec.crop_side(self.clips.train)
        shape = (spec.frames, side, side, 3)
        if not self.clips.train:
            shape = (self.clips.crops, *shape)
        repeats = self.clips.repeats
        per_item = (repeats,) if repeats > 1 else ()

        def load(key):
            video, label, weight, index, bad = tf.numpy_function(
                self._load, [key], (tf.uint8, tf.int32, tf.float32, tf.int32, tf.bool), stateful=False)
            video.set_shape((*per_item, *shape))
            return {"video": video, "label": tf.reshape(label, per_item), "weight": tf.reshape(weight, per_item),
                    "video_index": tf.reshape(index, per_item), "bad": tf.reshape(bad, per_item)}

        data = tf.data.Dataset.from_tensor_slices(np.asarray(self.order(epoch), dtype=np.int64))
        data = data.map(load, num_parallel_calls=self.parallel, deterministic=True)
        if repeats > 1:
            data = data.unbatch()
        return data.batch(self.batch_size).prefetch(tf.data.AUTOTUNE)


def training_batches(pipeline: ClipPipeline, epoch: int, num_classes: int) -> tf.data.Dataset:
    """``(video, one-hot label, sample weight)`` for ``keras.Model.fit``. The weights are rescaled per batch so that
    Keras' mean over the batch equals the PyTorch side's ``sum(loss * w) / sum(w)``: padding and unreadable videos
    (weight 0) add nothing, and do not dilute the others."""

    def split(batch):
        weight = batch["weight"]
        size = tf.cast(tf.shape(weight)[0], tf.float32)
        weight = weight * size / tf.maximum(tf.reduce_sum(weight), 1.0)
        return batch["video"], tf.one_hot(batch["label"], num_classes), weight

    return pipeline.epoch(epoch).map(split)
