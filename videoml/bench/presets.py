"""``videoml bench model|decode|infer``: presets of the suite. Each command's options make a
:class:`~videoml.bench.suite.SuiteConfig` whose cells measure what the command names; the suite runs them and writes
what every suite writes (``runs/*.json``, ``suite.json``, ``table.md``, plots), so the three share one results
schema, one timing path and ``videoml bench compare``."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from videoml.bench.suite import READING_SETS, Inference, Reading, SuiteConfig
from videoml.bench.videos import ENCODINGS, TRAIN_SETS
from videoml.vocab import Backend, ReadingStage, check, choices


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


@dataclass
class DecodeBench(Reading):
    """The reading stages' options are the suite's (:class:`~videoml.bench.suite.Reading`); these are the preset's."""
    backends: list[str] = field(default_factory=lambda: [*choices(Backend), "pytorchvideo"])
    """the backends measured (those installed), and pytorchvideo: PyTorchVideo's EncodedVideo as the baseline"""
    data: str = "data/bench"
    """where the benchmark's videos are made once"""
    out: str = "runs/bench/decode"
    """results directory"""
    repeats: int = 3
    """timed rounds over each scenario's clips (the median counts)"""
    training: bool = True
    """the training-sample scenario (decode stage: the encodings, at each number of clips per video)"""
    encodings: list[str] = field(default_factory=lambda: list(ENCODINGS))
    """training: original, and prepared with its variants"""
    clips_per_video: list[int] = field(default_factory=lambda: [1, 2, 4])
    """training: repeated sampling"""
    seed: int = 0

    def __post_init__(self):
        check(list(self.backends), (*choices(Backend), "pytorchvideo"), "backends")
        check(list(self.sets), READING_SETS, "sets")
        check(list(self.encodings), ENCODINGS, "encodings")

    def suite(self) -> SuiteConfig:
        """The reading stages per backend (random clips from the ``sets``; open-read-close; test views; memory) and,
        with ``training``, the decode stage on the training sets (pyav, every encoding)."""
        from videoml.data.decoding import backend_available

        reading = Reading(**{f.name: getattr(self, f.name) for f in fields(Reading)})
        reading.backends = [b for b in self.backends if b == "pytorchvideo" or backend_available(b)]
        timing = _timing(0, 1, self.repeats)  # a round: one pass over a cell's clips or videos
        return SuiteConfig(name="decode", models=[], frameworks={"torch": []}, backends=["pyav"],
                           stages=[*choices(ReadingStage), *["decode"] * self.training],
                           video_sets=list(TRAIN_SETS), encodings=list(self.encodings),
                           clips_per_video=list(self.clips_per_video),
                           seed=self.seed, timing=timing, data_timing=timing, reading=reading, data=self.data)


@dataclass
class InferBench(Inference):
    """The infer stage's options are the suite's (:class:`~videoml.bench.suite.Inference`); these are the preset's."""
    data: str = "data/bench"
    """where the benchmark videos are made"""
    out: str = "runs/bench/infer"
    """results directory"""
    model: str = "x3d_xs"
    """registry model, random weights"""
    videos: int = 48
    """10-second videos, made once"""
    batch_size: int = 16
    num_workers: int = 2
    device: str = "cpu"
    repeats: int = 3
    seed: int = 0

    def suite(self) -> SuiteConfig:
        """The infer stage: the model alone (3 warm-up calls, rounds of 5), whole runs of ``videoml infer`` and of
        the tutorial loop."""
        return SuiteConfig(name="infer", device=self.device, models=[self.model], frameworks={"torch": []},
                           batch_sizes=[self.batch_size], workers=[self.num_workers], stages=["infer"],
                           videos=self.videos, seed=self.seed, timing=_timing(3, 5, self.repeats),
                           inference=Inference(**{f.name: getattr(self, f.name) for f in fields(Inference)}),
                           data=self.data)
