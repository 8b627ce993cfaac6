"""``videoml bench model|decode|infer``: presets of the suite. Each command's options make a
:class:`~videoml.bench.suite.SuiteConfig` whose cells measure what the command names; the suite runs them and writes
what every suite writes (``runs/*.json``, ``suite.json``, ``table.md``, plots), so the three share one results
schema, one timing path and ``videoml bench compare``."""

from __future__ import annotations

from dataclasses import dataclass, field

from videoml.bench.suite import Inference, Reading, SuiteConfig
from videoml.bench.videos import ENCODINGS, TRAIN_SETS
from videoml.vocab import Backend, Engine, Precision, check, choices


def _timing(warmup: int, steps: int, repeats: int) -> dict:
    return {"warmup": warmup, "steps": steps, "repeats": repeats, "max_spread": None}


@dataclass(frozen=True)
class ModelBench:
    models: tuple[str, ...] = ("x3d_tiny", "x3d_xs")
    """registry names"""
    modes: tuple[str, ...] = ("fp32", "cl3d", "cl3d+bf16", "cl3d+compile")
    """execution modes, e.g. fp32, cl3d, cl3d+bf16, bf16+compile"""
    batch_size: int = 8
    device: str = "cpu"
    warmup: int = 3
    """untimed steps first"""
    steps: int = 5
    """steps a timed round"""
    repeats: int = 5
    """timed rounds"""
    classes: int = 400
    out: str = "runs/bench/model"
    """results directory"""
    profile: bool = False
    """also trace each model and mode's step (PyTorch Profiler) into OUT/profile-<cell>/"""
    seed: int = 0

    def suite(self) -> SuiteConfig:
        """PyTorch model cells, every mode, forward and train step."""
        return SuiteConfig(name="model", device=self.device, models=list(self.models),
                           frameworks={"torch": list(self.modes)}, batch_sizes=[self.batch_size],
                           stages=["forward", "train_step"], classes=self.classes, seed=self.seed,
                           timing=_timing(self.warmup, self.steps, self.repeats), profile=self.profile)


@dataclass(frozen=True)
class DecodeBench:
    data: str = "data/bench"
    """where the benchmark's videos are made once"""
    out: str = "runs/bench/decode"
    """results directory"""
    backends: tuple[str, ...] = choices(Backend)
    """the backends measured (those installed)"""
    frames: int = 8
    """T"""
    stride: int = 8
    """τ"""
    views: int = 10
    """test views"""
    clips: int = 60
    """random clips per scenario"""
    repeats: int = 3
    """timed rounds over each scenario's clips (the median counts)"""
    memory_reads: int = 5000
    pytorchvideo: bool = True
    """the PyTorchVideo EncodedVideo baseline"""
    short_seconds: int = 10
    """length of the many short videos (18 of them)"""
    long_seconds: int = 600
    """length of the long video"""
    real: bool = True
    """the random_clip scenario on real files (fetches the conformance corpus once)"""
    training: bool = True
    """the training-sample scenario (decode stage: original vs prepared data, 1, 2, 4 clips per video)"""
    train_videos_per_class: int = 8
    """its synthetic set: 6 classes x this; the Kinetics-like set a quarter of it"""
    train_seconds: int = 10
    """the Kinetics-like videos' length"""
    seed: int = 0

    def __post_init__(self):
        check(list(self.backends), Backend, "backends")

    def suite(self) -> SuiteConfig:
        """The reading stages per backend (random clips from short, long and real videos; open-read-close; test
        views; memory) and, with ``training``, the decode stage on the training sets (pyav, every encoding)."""
        from videoml.data.decoding import backend_available

        backends = [b for b in self.backends if backend_available(b)]
        reading = Reading(backends=backends + ["pytorchvideo"] * self.pytorchvideo, frames=self.frames,
                          stride=self.stride, clips=self.clips, views=self.views, memory_reads=self.memory_reads,
                          sets=["short", "long"] + ["real"] * self.real, short_seconds=self.short_seconds,
                          long_seconds=self.long_seconds, train_videos_per_class=self.train_videos_per_class,
                          train_seconds=self.train_seconds)
        timing = _timing(0, 1, self.repeats)  # a round: one pass over a cell's clips or videos
        return SuiteConfig(name="decode", models=[], frameworks={"torch": []}, backends=["pyav"],
                           stages=["random_clip", "open_random_clip", "test_views", "memory"] + ["decode"] * self.training,
                           video_sets=list(TRAIN_SETS), encodings=list(ENCODINGS), clips_per_video=[1, 2, 4],
                           seed=self.seed, timing=timing, data_timing=timing, reading=reading, data=self.data)


@dataclass(frozen=True)
class InferBench:
    data: str = "data/bench"
    """where the benchmark videos are made"""
    out: str = "runs/bench/infer"
    """results directory"""
    model: str = "x3d_xs"
    """registry model, random weights"""
    views: int = 5
    crops: int = 1
    videos: int = 48
    """10-second videos, made once"""
    baseline_videos: int = 8
    """videos the tutorial loop is timed on (it is slow)"""
    batch_size: int = 16
    num_workers: int = 2
    device: str = "cpu"
    precision: Precision = "fp32"
    engines: list[Engine] = field(default_factory=lambda: ["local"])
    """videoml infer's engines: local, ray (on a local Ray instance; pip install 'videoml[ray]')"""
    repeats: int = 3
    seed: int = 0

    def suite(self) -> SuiteConfig:
        """The infer stage: the model alone (3 warm-up calls, rounds of 5), whole runs of ``videoml infer`` and of
        the tutorial loop."""
        return SuiteConfig(name="infer", device=self.device, models=[self.model], frameworks={"torch": []},
                           batch_sizes=[self.batch_size], workers=[self.num_workers], stages=["infer"],
                           videos=self.videos, seed=self.seed, timing=_timing(3, 5, self.repeats),
                           inference=Inference(self.views, self.crops, self.baseline_videos, self.precision,
                                               list(self.engines)),
                           data=self.data)
