"""Clips from videos, for any framework: the clip options (one typed value), a run's sources and classes, sample keys
and exact sharding, the clip data set and its crash-surviving loader.

Framework-neutral (torch tensors and DataLoader, no Lightning, no TensorFlow): the LightningDataModule
(:mod:`videoml.data.datamodule`), the TensorFlow twin's tf.data pipeline (:mod:`videoml.tf.data`), the benchmark
workers and the Python API all read clips through this module, so an option is declared once (:class:`ClipOptions`)
and every framework gets the same clips.

Map-style, so the length is known: samplers shard it, progress bars show totals, and every epoch is reproducible.
(PyTorchVideo's iterable LabeledVideoDataset makes every rank read every video unless sharded by hand,
pytorchvideo #186, #102.)

Sharding (:class:`ShardSampler`): like ``DistributedSampler``, shards are padded to equal length (DDP needs the same
number of steps on every rank), but each key (:class:`SampleKey`) carries the epoch and a padding flag. A padded
duplicate gets weight 0: it adds nothing to the loss and is left out of evaluation, so one epoch counts every sample
exactly once across ranks.

A sample is a :class:`Sample`: ``video`` (uint8; (C, T, H, W) for training, (crops, C, T, H, W) for evaluation; a
list of two for SlowFast), ``label``, ``video_index``, ``view``, ``weight`` (0 for padding and for unreadable videos),
``bad`` (the video could not be decoded: the training loop counts these, see ``VideoClassifier``), ``short`` and
``repeat``; a batch is the same named tuple with its fields stacked.
"""

from __future__ import annotations

import logging
import multiprocessing
from dataclasses import dataclass
from typing import NamedTuple

from jsonargparse.typing import NonNegativeInt, PositiveInt
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, default_collate, get_worker_info

from videoml.data import transforms
from videoml.data.datasets import VideoList, load_source, shared_classes
from videoml.data.decoding import open_video, require_backend
from videoml.data.decoding.budget import DEFAULT_SECONDS, Seconds, time_budget
from videoml.data.frame_cache import DecodedVideos
from videoml.data.sampling import ClipSpec, fits, random_clip, uniform_clips
from videoml.errors import VideoDecodeError, VideomlError, first_line
from videoml.processes import dead_workers_reported_by_next, items_of_dead_workers, worker_init
from videoml.spec import InputSpec
from videoml.vocab import Backend, check

log = logging.getLogger("videoml.data")
SPLITS = ("train", "val", "test", "predict")


@dataclass(frozen=True)
class ClipOptions:
    """How a run's clips are made and loaded: ``data.*`` in a config (``videoml fit``, ``videoml tf fit``), the
    benchmark's data cells, the API.

    Args:
        batch_size: training clips a step, per process (with ``clips_per_video`` k: k clips of each of
            ``batch_size / k`` videos).
        eval_batch_size: evaluation samples a step (each with its crops); by default ``batch_size``.
        num_workers: decoding processes per loader (tf fit: decoding threads).
        backend: the video decoder (:func:`videoml.open_video`).
        views: evaluation clips per video, spread evenly over its length (scores are averaged per video).
        crops: evaluation crops per clip across its longer side (1: the centre; 3: PySlowFast's left, centre, right).
        flip: random horizontal flips in training (leave off where left/right direction is the label, or give
            ``flip_label_map``, as MMAction2 does for Something-Something)
        flip_label_map: class name -> class name of its mirror image (e.g. ``move_left: move_right``); others keep
            their label when flipped.
        reverse_label_map: class name -> class name of the same clip played backwards (e.g. ``grow: shrink``): such
            clips are reversed at random, the label swapped; clips of other classes are never reversed.
        sampling_fps: take clip frames at this rate by time stamps instead of every ``stride``-th source frame
            (default: the model's own, ``spec.fps``, where its weights were trained so: torchvision's at 15 fps).
        seed: with the epoch and the sample, decides every random draw of a clip (position, scale, crop, flips).
        decode_timeout: seconds one video may take to read; a slower one counts as unreadable (see
            :mod:`videoml.data.decoding.budget`).
        clips_per_video: training clips drawn, each augmented independently, from one decode of a video (repeated
            sampling, as PySlowFast's ``AUG.NUM_SAMPLE`` in the MViTv2 recipes): an epoch is k clips of every video,
            a video's clips in the same batch. ``batch_size`` still counts clips, so it must be a multiple of k.
        decoded_cache_mb: keep up to this many MiB of decoded training videos in memory, per loader process, so
            that each is decoded once (:mod:`videoml.data.frame_cache`): for data sets that fit, with few workers.
        rand_augment: PyTorchVideo's RandAugment on training clips, every frame alike, with these arguments
            (``magnitude``, ``num_layers``, ``prob``, ``sampling_std``; PySlowFast's MViT recipe ``rand-m7-n4-mstd0.5``
            is ``{magnitude: 7, num_layers: 4, sampling_std: 0.5}``).
        augmix: PyTorchVideo's AugMix instead (``magnitude``, ``alpha``, ``width``, ``depth``).
        random_erasing: the probability of erasing a random box of a training clip (the same box in every frame) with
            noise (PySlowFast's ``RE_PROB``, pixel mode; 0.25 in the MViT recipes).
    """

    batch_size: PositiveInt = 8
    eval_batch_size: PositiveInt | None = None
    num_workers: NonNegativeInt = 2
    backend: Backend = "pyav"
    views: PositiveInt = 1
    crops: PositiveInt = 1
    flip: bool = False
    flip_label_map: dict[str, str] | None = None
    reverse_label_map: dict[str, str] | None = None
    sampling_fps: float | None = None
    seed: int = 0
    decode_timeout: Seconds = DEFAULT_SECONDS
    clips_per_video: PositiveInt = 1
    decoded_cache_mb: NonNegativeInt = 0
    rand_augment: dict | None = None
    augmix: dict | None = None
    random_erasing: float = 0.0

    def __post_init__(self):
        if self.batch_size % self.clips_per_video:
            raise VideomlError(f"data.batch_size ({self.batch_size}) must be a multiple of data.clips_per_video "
                               f"({self.clips_per_video}): a batch holds every clip of its videos")
        if not 0 <= self.random_erasing <= 1:
            raise VideomlError(f"data.random_erasing is a probability, got {self.random_erasing}")
        require_backend(self.backend)

    def batch(self, train: bool) -> int:
        """Clips (training) or samples (evaluation) a step."""
        return self.batch_size if train else (self.eval_batch_size or self.batch_size)


def label_map(names: dict[str, str] | None, classes, option: str) -> dict[int, int]:
    """A class-name map (``data.flip_label_map``, ``data.reverse_label_map``) as label numbers; unknown names are an
    error naming them."""
    classes = list(classes)
    check(sorted({n for pair in (names or {}).items() for n in pair}), classes, "classes", VideomlError, f"data.{option}")
    return {classes.index(a): classes.index(b) for a, b in (names or {}).items()}


class SampleKey(NamedTuple):
    """What a sampler hands a :class:`ClipDataset`: which sample, in which epoch (with the seed, it decides the
    sample's random draws), and whether it is a padding duplicate of equal shards. A plain int ``i`` is sample ``i``
    of epoch 0."""

    index: int
    epoch: int = 0
    padding: bool = False

    @classmethod
    def of(cls, key) -> "SampleKey":
        """A key from an int, a SampleKey, or the 3 numbers of one as tf.data hands them over."""
        if isinstance(key, cls):  # what the samplers hand over: no conversion on the loading path
            return key
        if np.ndim(key) == 0:
            return cls(int(key))
        index, epoch, padding = (int(v) for v in key)
        return cls(index, epoch, bool(padding))


class ShardSampler(DistributedSampler):
    """DistributedSampler whose indices also say the epoch and whether they are padding (see module doc)."""

    def __iter__(self):
        n = len(self.dataset)
        if self.shuffle:
            g = torch.Generator()
            g.manual_seed(self.seed + self.epoch)
            order = torch.randperm(n, generator=g).tolist()
        else:
            order = list(range(n))
        padded = [(i, False) for i in order]
        padded += [(order[k % n], True) for k in range(self.total_size - n)]
        mine = padded[self.rank:self.total_size:self.num_replicas]
        return iter([SampleKey(i, self.epoch, pad) for i, pad in mine])


def epoch_order(dataset: "ClipDataset", epoch: int, shuffle: bool, seed: int = 0) -> list[SampleKey]:
    """The sample keys of one epoch for a single process, in the order its sampler gives them."""
    sampler = dataset.sampler(shuffle=shuffle, seed=seed)
    sampler.set_epoch(epoch)
    return list(sampler)


class Sample(NamedTuple):
    """One clip of a data set, as loaders batch it (after collation: the same fields, stacked)."""

    video: torch.Tensor | list[torch.Tensor]  # uint8 (C, T, H, W), evaluation (crops, C, T, H, W); SlowFast [slow, fast]
    label: int
    video_index: int  # the video's position in its listing
    view: int  # evaluation: which temporal view of the video
    weight: float  # 1, or 0 for padding and unreadable videos (left out of the loss and the scores)
    bad: bool  # the video could not be read (counted against max_bad_fraction)
    short: bool  # shorter than a clip: padded (counted)
    repeat: int = 0  # training with data.clips_per_video: which of the video's clips


class ClipDataset(Dataset):
    """Training: a random clip per video (scale jitter, random crop, optional flip and time reversal), or
    ``clips_per_video`` independently drawn and augmented clips from one decode of the video (repeated sampling).
    Evaluation: one sample per (video, temporal view), each with all its spatial crops.

    With ``clips_per_video`` k > 1 a training item holds the k clips stacked (every value gains a leading k axis;
    :func:`flatten_repeats` makes a loader's batch of them a batch of clips), each clip drawn from its own generator
    (seed, epoch, index, repeat): a (video, repeat) pair is one sample, counted once per epoch.

    ``flip_labels`` (from ``options.flip_label_map``): label -> label of the mirrored clip (e.g. move_left ->
    move_right); labels not in it keep theirs. ``reverse_labels`` (``options.reverse_label_map``): label -> label of the
    clip played backwards (e.g. grow -> shrink); only clips whose label is in it are ever reversed (most actions have
    no reversed counterpart)."""

    def __init__(self, videos: VideoList, spec: InputSpec, options: ClipOptions = ClipOptions(), train: bool = False):
        self.videos, self.spec, self.options, self.train = videos, spec, options, train
        self.augmentation = transforms.clip_augmentation(options.rand_augment, options.augmix) if train else None
        self.random_erasing = options.random_erasing if train else 0.0
        self.cache = DecodedVideos(options.decoded_cache_mb * 2**20) if train and options.decoded_cache_mb else None
        self.decode_timeout = options.decode_timeout
        self.views = 1 if train else options.views
        self.crops = options.crops
        self.repeats = options.clips_per_video if train else 1
        self.backend, self.flip, self.seed = options.backend, options.flip, options.seed
        self.flip_labels = label_map(options.flip_label_map, videos.classes, "flip_label_map")
        self.reverse_labels = label_map(options.reverse_label_map, videos.classes, "reverse_label_map")
        self.clip = ClipSpec(spec.frames, spec.stride, fps=options.sampling_fps or spec.fps)
        self.reading = None  # a shared array: per loader worker, the sample it reads (see ClipLoader)
        self.crashed: dict[int, str] = {}  # video index -> why: a loader worker died reading it

    def __len__(self) -> int:
        return len(self.videos) * self.views

    def crashed_reading(self, index: int, why: str) -> None:
        """Sample ``index``'s video killed the process reading it: from now on it is unreadable (no decoding)."""
        video_index = index // self.views
        self.crashed[video_index] = why
        log.warning("skipping unreadable video: %s: %s", self.videos.items[video_index][0], why)

    def sample_rng(self, epoch: int, index: int, repeat: int = 0) -> np.random.Generator:
        """The generator a clip's position, scale, crop and flips are drawn from, in that order."""
        return np.random.default_rng([self.seed, epoch, index, *([repeat] if repeat else [])])

    def sampler(self, world: int = 1, rank: int = 0, workers: int = 0, batch: int = 1, shuffle: bool | None = None,
                seed: int | None = None) -> ShardSampler:
        """The keys of process ``rank`` of ``world`` (its loader has ``workers`` workers taking batches of ``batch``
        keys in turn): shuffled by (seed, epoch) in training, unless ``shuffle`` says otherwise."""
        return ShardSampler(self, num_replicas=world, rank=rank, shuffle=self.train if shuffle is None else shuffle,
                            seed=self.seed if seed is None else seed)

    def _source(self, video_index: int):
        """What video ``video_index`` is opened from, and its frame index where at hand (None: built or cached)."""
        return self.videos.items[video_index][0], None

    def __getitem__(self, key: SampleKey | int) -> Sample:
        index, epoch, padding = SampleKey.of(key)
        video_index, view = divmod(index, self.views)
        path, label = self.videos.items[video_index]
        rngs = [self.sample_rng(epoch, index, r) for r in range(self.repeats)]
        spec, short, bad = self.spec, False, False
        if self.reading is not None:
            info = get_worker_info()
            self.reading[info.id if info else 0] = index
        try:
            if video_index in self.crashed:
                raise VideoDecodeError(path, self.crashed[video_index])
            with time_budget(self.decode_timeout, path):
                video, size = self._open(video_index)
                with video:
                    if video.num_frames < 2:
                        raise VideoDecodeError(path, "a single picture, not a video")
                    short = not fits(self.clip, video.timestamps)  # padded (ClipSpec.pad), counted
                    plans = [self._plan(video, rng, view) for rng in rngs]
                    clips = self._read(video, plans, size)
        except VideoDecodeError as e:
            if video_index not in self.crashed and not e.said:  # (said once, as it crashed or for its shard)
                log.warning("skipping unreadable video: %s", e)
            side = spec.crop_side(self.train)
            plans = [(None, side)] * self.repeats
            clips = [torch.zeros((spec.frames, side, side, 3), dtype=torch.uint8)] * self.repeats
            bad = True
        weight = 0.0 if padding or bad else 1.0
        samples = [Sample(*self._augment(frames, label, rng, size), video_index, view, weight, bad, short, r)
                   for r, (frames, rng, (_, size)) in enumerate(zip(clips, rngs, plans))]
        return samples[0] if self.repeats == 1 else default_collate(samples)  # k clips: a leading k axis

    def _plan(self, video, rng: np.random.Generator, view: int) -> tuple[np.ndarray, int]:
        """(frame indices, short side) of one training clip; of an evaluation clip, (frame indices, None)."""
        if self.train:
            indices = random_clip(self.clip, video.timestamps, rng)
            return indices, int(rng.integers(self.spec.train_scale[0], self.spec.train_scale[1] + 1))
        return uniform_clips(self.clip, video.timestamps, self.views)[view], None  # evaluation_frames resizes

    def _open(self, video_index: int):
        """(the video, the size training decodes it at): kept decoded in memory when ``decoded_cache_mb`` allows.

        Training decodes frames as stored (FFmpeg's converter is several times faster unscaled; :meth:`_augment`
        scales just the crop), or scaled by the decoder to the largest training scale when stored over twice as
        large (``videoml bench decode``, train_clip, has the measurements behind this)."""
        cached = self.cache.get(video_index) if self.cache is not None else None
        if cached is not None:
            return cached, cached.size
        source, index = self._source(video_index)
        video = open_video(source, self.backend, threads=1, bad_frames="nearest", index=index)
        largest = self.spec.train_scale[1]
        size = None if min(video.width, video.height) <= 2 * largest else largest
        try:
            kept = self.cache.keep(video_index, video, size) if self.cache and video.num_frames >= 2 else None
        except BaseException:
            video.close()
            raise
        if kept is None:
            return video, size
        video.close()
        return kept, size

    def _read(self, video, plans: list[tuple[np.ndarray, int]], size: int | None) -> list[torch.Tensor]:
        """The clips' frames, decoded in one call (frames shared by several clips once): for evaluation scaled by
        the decoder, as ``videoml infer`` reads them; for training at ``size`` (see :meth:`_open`)."""
        if not self.train:
            return [transforms.evaluation_frames(video, indices, self.spec).data for indices, _ in plans]
        frames = video.get_frames(np.concatenate([indices for indices, _ in plans]), size=size).data
        return list(torch.split(frames, [len(indices) for indices, _ in plans]))

    def _augment(self, frames: torch.Tensor, label: int, rng: np.random.Generator, size: int):
        """(the clip in the model's layout, its label): cropped, flipped or reversed (with their labels), and
        augmented as the recipe says (RandAugment or AugMix, random erasing)."""
        spec = self.spec
        if self.train:
            frames = transforms.scaled_random_crop(frames, size, spec.crop, rng)
            if self.flip and rng.random() < 0.5:
                frames = transforms.horizontal_flip(frames)
                label = self.flip_labels.get(label, label)
            if label in self.reverse_labels and rng.random() < 0.5:
                frames = frames.flip(0)
                label = self.reverse_labels[label]
            if self.augmentation is not None:
                frames = transforms.augmented(frames, self.augmentation, rng)
            if self.random_erasing and rng.random() < self.random_erasing:
                frames = transforms.random_erasing(frames, rng, spec.mean, spec.std)
        else:
            frames = transforms.evaluation_crops(frames, spec, self.crops)
        return transforms.pack_pathways(transforms.to_model_layout(frames), spec.slowfast_alpha), label


class ClipLoader(DataLoader):
    """A DataLoader of a :class:`ClipDataset` that outlives a worker's death (a crash inside a decoder on some file,
    an out-of-memory kill), which would end torch's loader and the run.

    The video the dead worker was reading becomes unreadable (its samples bad: weight 0, counted against
    ``max_bad_fraction`` as any unreadable video is), and fresh workers make the epoch's remaining batches, the ones
    in flight again: the epoch keeps its length (DDP's ranks stay in step), every other sample delivered once.
    ``videoml infer`` does the same per video (:func:`videoml.infer.clips.decoded_items`).
    """

    def __iter__(self):
        return self._surviving() if self.num_workers else super().__iter__()

    def _surviving(self):
        dataset = self.dataset
        if dataset.reading is None:  # before the first workers start: theirs is this one
            dataset.reading = multiprocessing.Array("q", [-1] * self.num_workers)
        loader, delivered, epoch = self, 0, None
        while True:
            iterator = DataLoader.__iter__(loader)
            dead_workers_reported_by_next()
            try:
                for batch in iterator:
                    delivered += 1
                    yield batch
                return
            # torch: "DataLoader worker (pid(s) N) exited unexpectedly"; or it died while handing over a tensor
            except (RuntimeError, ConnectionError, EOFError) as e:
                epoch = epoch or list(self.batch_sampler)  # the sampler gives an epoch's batches alike every time
                pending = {SampleKey.of(key).index for batch in epoch[delivered:] for key in batch}
                culprits = [i for i in items_of_dead_workers(iterator, dataset.reading) if i in pending]
                if not culprits:
                    raise
                for index in culprits:
                    dataset.crashed_reading(index, f"the decoding process died reading it ({first_line(e)})")
                self._iterator = None  # persistent workers, one of them dead: fresh ones for the next epoch
                del iterator
                loader = DataLoader(dataset, batch_sampler=epoch[delivered:], num_workers=self.num_workers,
                                    collate_fn=self.collate_fn, pin_memory=self.pin_memory,
                                    worker_init_fn=self.worker_init_fn, prefetch_factor=self.prefetch_factor,
                                    multiprocessing_context=self.multiprocessing_context, timeout=self.timeout)


def flatten_repeats(items: list[Sample]) -> Sample:
    """Collate items of k stacked clips (B, k, ...) into one batch of B * k clips, a video's clips side by side."""
    batch = default_collate(items)

    def flat(value):
        return [flat(v) for v in value] if isinstance(value, list) else value.flatten(0, 1)

    return Sample(*(flat(value) for value in batch))



class ClipData:
    """A run's clip data: its sources (split -> :class:`~videoml.data.datasets.VideoList`), the class names they share,
    and per split the :class:`ClipDataset` and its loader, made with one :class:`ClipOptions`.

    ``sources``: split name -> a source's configuration (``{"kind": "labeled_paths", "path": ...}``, see
    :func:`~videoml.data.datasets.load_source`) or a VideoList; splits given None are left out.
    """

    def __init__(self, spec: InputSpec | None, sources: dict, options: ClipOptions = ClipOptions()):
        if spec is None:
            raise VideomlError("clips need the model's input spec (data.spec, linked from model.model)")
        self.spec, self.options = spec, options
        self.sources = {name: source if isinstance(source, VideoList) else load_source(**source)
                        for name, source in sources.items() if source}
        if not self.sources:
            raise VideomlError("no data source (train, val, test or predict)")
        self.classes = list(shared_classes(self.sources))
        for option in ("flip_label_map", "reverse_label_map"):  # a wrong class name is refused now, not when loading
            label_map(getattr(options, option), self.classes, option)

    def dataset(self, name: str) -> ClipDataset:
        if name not in self.sources:
            raise VideomlError(f"no {name} data configured (data.{name})")
        from videoml.data.shard_reading import ShardClipDataset, ShardedList

        videos = self.sources[name]
        kind = ShardClipDataset if isinstance(videos, ShardedList) else ClipDataset
        return kind(videos, self.spec, self.options, train=name == "train")

    def loader(self, name: str, world: int = 1, rank: int = 0) -> ClipLoader:
        """Split ``name``'s batches for process ``rank`` of ``world``: training shuffled by (seed, epoch), every
        sample once across the processes (padding weightless), ``num_workers`` decoding processes."""
        dataset, workers = self.dataset(name), self.options.num_workers
        batch = self.options.batch(dataset.train) // dataset.repeats
        return ClipLoader(dataset, batch_size=batch, sampler=dataset.sampler(world, rank, workers, batch),
                          num_workers=workers, collate_fn=flatten_repeats if dataset.repeats > 1 else None,
                          persistent_workers=workers > 0, worker_init_fn=worker_init,
                          pin_memory=torch.cuda.is_available(), prefetch_factor=4 if workers else None)
