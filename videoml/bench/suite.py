"""``videoml bench suite CONFIG``: a declared matrix of measurements, one process per framework, one results folder.

A suite config (``configs/bench/*.yaml``, documented in each) declares models, frameworks with their modes, batch
sizes, stages, the data stages' backends, video sets, encodings and loader workers, the reading and infer stages'
settings, the timing and the thread count. ``videoml bench model|decode|infer`` are presets of it
(:mod:`videoml.bench.presets`). The suite

1. measures the ceilings once, in this process, before any worker runs: the device's peak FLOP/s at each precision
   the model cells run at, and each model's FLOPs per clip (:mod:`videoml.bench.ceilings`);
2. makes the video sets its cells read once (:mod:`videoml.bench.videos`);
3. runs one worker process per framework (:mod:`videoml.bench.worker`), one after the other, so that neither
   framework's threads or memory disturb the other's measurements;
4. writes ``suite.json`` (config, ceilings, every run's summary, the diagnosis), ``table.md`` and the plots
   (:mod:`videoml.bench.report`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from videoml.bench.measure import Timing
from videoml.bench.records import Cell
from videoml.bench.videos import ENCODINGS, TRAIN_SETS
from videoml.errors import UsageError, VideomlError
from videoml.vocab import (Backend, BenchStage, Engine, Framework, InferStage, ModelStage, Precision, ReadingStage,
                           check, choices, tf_mode)

MODEL_STAGES, READING_STAGES, INFER_STAGES = choices(ModelStage), choices(ReadingStage), choices(InferStage)
FRAMEWORKS = dict(zip(choices(Framework), ("torch", "tensorflow")))  # name -> the package whose version is recorded


READING_SETS = ("short", "long", "real")  # the random_clip stage's videos: 18 short ones, a long one, the corpus


@dataclass
class Reading:
    """The reading stages (random_clip, open_random_clip, test_views, memory) and the training video sets."""
    backends: list[str] = field(default_factory=lambda: list(choices(Backend)))
    """pytorchvideo: PyTorchVideo's EncodedVideo as the baseline of open_random_clip and test_views"""
    frames: int = 8
    """T of the clips read"""
    stride: int = 8
    """τ"""
    clips: int = 60
    """random clips (test_views: a quarter as many videos) a cell reads, each once a round"""
    views: int = 10
    """test_views: clips per video"""
    memory_reads: int = 5000
    sets: list[str] = field(default_factory=lambda: list(READING_SETS))
    """random_clip: the video sets read (short, long, real)"""
    short_seconds: int = 10
    """length of the short videos (18 of them)"""
    long_seconds: int = 600
    """length of the long video"""
    train_videos_per_class: int = 8
    """the synth set: 6 classes x this; kinetics_like a quarter of it at each of two sizes"""
    train_seconds: int = 10
    """the kinetics_like videos' length"""


@dataclass
class Inference:
    """The infer stage: videoml infer, PyTorchVideo's tutorial loop and the model alone (batch: the first batch
    size; decoding workers: the first of workers)."""
    views: int = 5
    crops: int = 1
    baseline_videos: int = 8
    """videos the tutorial loop is timed on (it is slow)"""
    precision: Precision = "32-true"
    engines: list[Engine] = field(default_factory=lambda: ["local"])
    """videoml infer's engines timed: local, and ray (videoml_infer_ray: --engine ray on a Ray instance started for
    the cell, its start not timed)"""


# Every call of a data cell reads another video (another clip position, another distance from a key frame), so its
# rounds are this many times longer than a model cell's, for a median as stable (unless the suite sets data_timing).
DATA_STEPS_FACTOR = 4


@dataclass
class Plan:
    """One framework's share of a suite, written as ``plan-<framework>.json`` for its worker
    (:mod:`videoml.bench.worker`), which runs in a process of its own."""
    suite: str
    framework: Framework
    device: str
    threads: int
    seed: int
    classes: int
    timing: Timing
    data_timing: Timing
    """the data and reading cells' timing"""
    reading: Reading
    inference: Inference
    modes: list[str]
    """the framework's modes (a pipeline cell's "best" mode falls back to the first)"""
    videos: dict[str, dict[str, list[str]]]
    """video set -> encoding -> paths"""
    cells: list[Cell]
    out: str
    profile: bool = False

    @property
    def framework_package(self) -> str:
        return FRAMEWORKS[self.framework]

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def read(cls, path: str | os.PathLike) -> "Plan":
        fields = json.loads(Path(path).read_text())
        typed = {"timing": Timing, "data_timing": Timing, "reading": Reading, "inference": Inference}
        return cls(**{**fields, **{k: kind(**fields[k]) for k, kind in typed.items()},
                      "cells": [Cell(**c) for c in fields["cells"]]})


@dataclass
class SuiteConfig:
    name: str = "suite"
    device: str = "cpu"
    models: list[str] = field(default_factory=lambda: ["x3d_tiny"])
    frameworks: dict[str, list[str]] = field(default_factory=lambda: {"torch": ["fp32"], "tf": ["graph"]})
    batch_sizes: list[int] = field(default_factory=lambda: [8])
    stages: list[str] = field(default_factory=lambda: ["forward", "train_step"])
    backends: list[str] = field(default_factory=lambda: ["pyav"])
    """decode stage"""
    workers: list[int] = field(default_factory=lambda: [2])
    """pipeline stage"""
    video_sets: list[str] = field(default_factory=lambda: ["web"])
    """data stages: web (the suite's videos, read for each model), synth, kinetics_like (each read for its model)"""
    encodings: list[str] = field(default_factory=lambda: ["original"])
    """data stages: original, prepared, prepared-no_bframes, prepared-no_fastdecode, prepared-gop1"""
    clips_per_video: list[int] = field(default_factory=lambda: [1])
    """data stages: repeated sampling"""
    videos: int = 8
    """the web set's 10-s videos"""
    classes: int = 400
    threads: int = field(default_factory=lambda: min(os.cpu_count() or 1, 16))
    seed: int = 0
    timing: dict = field(default_factory=lambda: asdict(Timing()))
    data_timing: dict | None = None
    """the data and reading stages' timing (default: timing, with 4x the steps a round)"""
    reading: Reading = field(default_factory=Reading)
    inference: Inference = field(default_factory=Inference)
    data: str = "data/bench"
    """where the benchmark videos are made once"""
    profile: bool = False
    """also trace each PyTorch model cell's step (PyTorch Profiler) into <out>/profile-<cell>/"""

    def check(self, where) -> None:
        from videoml.bench.model import Mode
        from videoml.models.registry import model_entry

        for name in self.models:
            model_entry(name)
        for framework, modes in self.frameworks.items():
            check(framework, Framework, "framework", where=where)
            for mode in modes:
                if framework == "torch":
                    Mode.parse(mode)
                else:
                    tf_mode(mode)
        for what, values, known in (("stages", self.stages, BenchStage), ("encodings", self.encodings, ENCODINGS),
                                    ("video_sets", self.video_sets, ("web", *TRAIN_SETS)),
                                    ("backends", self.backends, choices(Backend)),
                                    ("reading.backends", self.reading.backends, (*choices(Backend), "pytorchvideo")),
                                    ("reading.sets", self.reading.sets, READING_SETS)):
            check(list(values), known, what, where=where)
        if not self.encodings or min(self.clips_per_video, default=0) < 1:
            raise UsageError(f"{where}: encodings must name at least one encoding (got {self.encodings}) and "
                             f"clips_per_video be >= 1 (got {self.clips_per_video})")
        counts = {f"{part}.{k}": v for part in ("reading", "inference")
                  for k, v in asdict(getattr(self, part)).items() if isinstance(v, int) and v < 1}
        if counts:
            raise UsageError(f"{where}: these must be >= 1: " + ", ".join(f"{k} (got {v})" for k, v in counts.items()))
        Timing(**self.timing)
        Timing(**(self.data_timing or {}))

    def cells(self, framework: str) -> list[Cell]:
        """What a framework's worker measures."""
        modes = self.frameworks.get(framework, [])
        cells = [Cell("model", framework, model, mode, stage=stage, batch_size=batch)
                 for model in self.models for batch in self.batch_sizes for mode in modes
                 for stage in MODEL_STAGES if stage in self.stages and _has_stage(framework, mode, stage)]
        if framework == "torch":
            cells += self._torch_only_cells()
        if "pipeline" in self.stages and modes:  # in the mode whose train step was fastest ("best")
            cells += [Cell("pipeline", framework, model, "best", batch_size=self.batch_sizes[0], workers=w,
                           videos=videos, data=e, clips_per_video=k)
                      for videos, model in self._data_sets() for w in self.workers
                      for e in self.encodings for k in self.clips_per_video]
        return cells

    def _data_sets(self) -> list[tuple[str, str]]:
        """(video set, model) of the data stages: the web set for every model, a training set for its own."""
        return [(v, m) for v in self.video_sets for m in ([TRAIN_SETS[v]] if v in TRAIN_SETS else self.models)]

    def _torch_only_cells(self) -> list[Cell]:
        stages, batch, first = self.stages, self.batch_sizes[0], self.models[:1]
        cells = [Cell(kind, model=m, backend=b, videos=v, data=e, clips_per_video=k)
                 for kind in ("decode", "decode_cached") if kind in stages for v, m in self._data_sets()
                 for b in self.backends for e in self.encodings for k in self.clips_per_video]
        cells += [Cell(kind, model=m, batch_size=batch) for m in self.models for kind in ("transform", "h2d")
                  if kind in stages and (kind == "transform" or self.device.startswith("cuda"))]
        reading = [b for b in self.reading.backends if b != "pytorchvideo"]
        cells += [Cell("random_clip", backend=b, videos=v) for v in self.reading.sets for b in reading
                  if "random_clip" in stages]
        cells += [Cell(kind, backend=b, videos="short") for kind in READING_STAGES[1:] if kind in stages
                  for b in (self.reading.backends if kind != "memory" else reading)]
        cells += [Cell("infer", model=m, stage=s, batch_size=batch if s != "pytorchvideo_loop" else None, videos="web",
                       workers=self.workers[0] if s.startswith("videoml_infer") else None)
                  for m in (first if "infer" in stages else []) for s in INFER_STAGES
                  if s != "videoml_infer_ray" or "ray" in self.inference.engines]
        return cells


def run(config: SuiteConfig, out: str | os.PathLike, frameworks: list[str] | None = None) -> tuple:
    """Run the suite into ``out``: its :class:`~videoml.bench.diagnose.Summary` (also ``out/suite.json``) and the
    names of the files written beside ``runs/``."""
    import torch

    from videoml.bench import report
    from videoml.bench.ceilings import compute_ceilings
    from videoml.bench.diagnose import summarize_suite
    from videoml.bench.videos import video_sets
    from videoml.runtime import parse_device

    out = Path(out)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    device = parse_device(config.device)
    torch.set_num_threads(config.threads)
    cells = {framework: config.cells(framework) for framework in frameworks or list(config.frameworks)}
    precisions = sorted({c.precision for todo in cells.values() for c in todo if c.kind == "model"})
    ceilings = compute_ceilings(device, precisions, config.models, config.classes)
    timing = Timing(**config.timing)
    data_timing = Timing(**config.data_timing) if config.data_timing else \
        replace(timing, steps=timing.steps * DATA_STEPS_FACTOR)
    videos = video_sets(config, {c.videos for framework in cells.values() for c in framework if c.videos})
    for framework, todo in cells.items():
        if not todo:
            continue
        plan = Plan(config.name, framework, config.device, config.threads, config.seed, config.classes, timing,
                    data_timing, config.reading, config.inference, config.frameworks[framework], videos, todo,
                    str(out), config.profile)
        plan_path = out / f"plan-{framework}.json"
        plan.write(plan_path)
        result = subprocess.run([sys.executable, "-m", "videoml.bench.worker", str(plan_path)])
        if result.returncode != 0:
            error = out / f"error-{framework}.txt"
            reason = error.read_text().strip() if error.is_file() else f"exit status {result.returncode}"
            raise VideomlError(f"the {framework} worker stopped: {reason} (results so far in {out}/runs)")
    summary = summarize_suite(out, asdict(config), ceilings)
    return summary, report.write(summary, out)


def _has_stage(framework: str, mode: str, stage: str) -> bool:
    from videoml.bench.model import Mode

    if framework != "torch":
        return stage != "fit_step"  # (the training loop measured is videoml fit's: Lightning)
    return Mode.parse(mode).measures(stage)
