"""``videoml bench suite CONFIG``: a declared matrix of measurements, one process per framework, one results folder.

A suite config (``configs/bench/*.yaml``, documented in each) declares models, frameworks with their modes, batch
sizes, stages, the data stages' backends and loader workers, the timing and the thread count. The suite

1. measures the ceilings once, in this process, before any worker runs: the device's matmul rate and each
   model's FLOPs per clip (:mod:`videoml.bench.ceilings`);
2. makes the benchmark videos once (10-s 320x240 H.264, GOP 60, B-frames: web video);
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
from dataclasses import asdict, dataclass, field
from pathlib import Path

from videoml.bench.measure import Timing
from videoml.errors import UsageError, VideomlError
from videoml.vocab import TFMode, choices

STAGES = ("forward", "train_step", "decode", "transform", "h2d", "pipeline")
ENCODINGS = ("original", "prepared")  # the benchmark videos as made, or after `videoml data prepare`
FRAMEWORKS = {"torch": "torch", "tf": "tensorflow"}  # name -> the package whose version is recorded


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
    encodings: list[str] = field(default_factory=lambda: ["original"])
    """data stages: original and/or prepared"""
    clips_per_video: list[int] = field(default_factory=lambda: [1])
    """data stages: repeated sampling"""
    videos: int = 8
    classes: int = 400
    threads: int = field(default_factory=lambda: min(os.cpu_count() or 1, 16))
    seed: int = 0
    timing: dict = field(default_factory=lambda: asdict(Timing()))
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
            if framework not in FRAMEWORKS:
                raise UsageError(f"{where}: unknown framework {framework!r} (known: torch, tf)")
            for mode in modes:
                if framework == "torch":
                    Mode.parse(mode)
                elif mode not in choices(TFMode):
                    raise UsageError(f"{where}: unknown tf mode {mode!r} (known: eager, graph, xla)")
        bad = [s for s in self.stages if s not in STAGES]
        if bad:
            raise UsageError(f"{where}: unknown stages {bad} (known: {', '.join(STAGES)})")
        bad = [e for e in self.encodings if e not in ENCODINGS]
        if bad or not self.encodings or min(self.clips_per_video, default=0) < 1:
            raise UsageError(f"{where}: encodings must name some of {', '.join(ENCODINGS)} (got {self.encodings}) "
                             f"and clips_per_video be >= 1 (got {self.clips_per_video})")
        Timing(**self.timing)

    def cells(self, framework: str) -> list[dict]:
        """What a framework's worker measures."""
        modes = self.frameworks.get(framework, [])
        cells = []
        for model in self.models:
            for batch in self.batch_sizes:
                for mode in modes:
                    for stage in ("forward", "train_step"):
                        if stage in self.stages:
                            cells.append({"kind": "model", "framework": framework, "model": model, "mode": mode,
                                          "stage": stage, "batch_size": batch})
            batch = self.batch_sizes[0]
            data = [{"data": e, "clips_per_video": k} for e in self.encodings for k in self.clips_per_video]
            if framework == "torch":
                if "decode" in self.stages:
                    cells += [{"kind": "decode", "model": model, "backend": b, **d} for b in self.backends for d in data]
                if "transform" in self.stages:
                    cells.append({"kind": "transform", "model": model, "batch_size": batch})
                if "h2d" in self.stages and self.device.startswith("cuda"):
                    cells.append({"kind": "h2d", "model": model, "batch_size": batch})
            if "pipeline" in self.stages and modes:  # in the mode whose train step was fastest ("best")
                cells += [{"kind": "pipeline", "framework": framework, "model": model, "mode": "best",
                           "modes": modes, "batch_size": batch, "workers": w, **d} for w in self.workers for d in data]
        return cells


def _videos(config: SuiteConfig) -> dict[str, list[str]]:
    """encoding -> the benchmark videos: made once, and prepared once (at the largest training scale of the models)."""
    from videoml.bench.common import prepare_videos, ten_second_videos
    from videoml.data.prepare import PrepareConfig
    from videoml.models.registry import model_input

    root, original = ten_second_videos(config.data, "suite", config.videos)
    videos = {"original": [str(p) for p in original]}
    if "prepared" in config.encodings:
        short = max(model_input(m).train_scale[1] for m in config.models)
        prepared = prepare_videos(original, root.with_name(f"{root.name}-prepared-s{short}"),
                                  PrepareConfig(short_side=short))
        videos["prepared"] = [str(p) for p in prepared]
    return videos


def run(config: SuiteConfig, out: str | os.PathLike, frameworks: list[str] | None = None) -> dict:
    """Run the suite into ``out``; returns the summary (also ``out/suite.json``)."""
    import torch

    from videoml.bench import report
    from videoml.bench.diagnose import summarize_suite
    from videoml.bench.ceilings import flops_per_clip, matmul_peak
    from videoml.runtime import parse_device

    out = Path(out)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    device = parse_device(config.device)
    torch.set_num_threads(config.threads)
    ceilings = {"matmul": matmul_peak(device),
                "flops_per_clip": {m: flops_per_clip(m, config.classes) for m in config.models}}
    videos = {}
    if any(s in config.stages for s in ("decode", "pipeline")):
        videos = _videos(config)
    for framework in frameworks or list(config.frameworks):
        cells = config.cells(framework)
        if not cells:
            continue
        plan = {"suite": config.name, "framework": framework, "framework_package": FRAMEWORKS[framework],
                "device": config.device, "threads": config.threads, "seed": config.seed, "classes": config.classes,
                "timing": config.timing, "videos": videos, "cells": cells, "out": str(out),
                "profile": config.profile}
        plan_path = out / f"plan-{framework}.json"
        plan_path.write_text(json.dumps(plan, indent=2) + "\n")
        result = subprocess.run([sys.executable, "-m", "videoml.bench.worker", str(plan_path)])
        if result.returncode != 0:
            error = out / f"error-{framework}.txt"
            reason = error.read_text().strip() if error.is_file() else f"exit status {result.returncode}"
            raise VideomlError(f"the {framework} worker stopped: {reason} (results so far in {out}/runs)")
    summary = summarize_suite(out, asdict(config), ceilings)
    report.write(summary, out)
    return summary
