"""What a benchmark run is made of: the cell measured (:class:`Cell`) and its record (:class:`Run`), written as
``runs/<name>.json`` (schema ``videoml-bench-run/1``, docs/benchmarks.md) and read back by the diagnosis, the
report and ``videoml bench compare``."""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from videoml.errors import VideomlError
from videoml.vocab import PRECISION_NAMES

SCHEMA = "videoml-bench-run/1"


@dataclass(frozen=True)
class Cell:
    """One measurement of a suite: what is timed (``kind``) and its parameters; None where one does not apply."""
    kind: str
    framework: str | None = None
    model: str | None = None
    mode: str | None = None
    backend: str | None = None
    stage: str | None = None
    """model cells: forward or train_step; infer cells: model_only, model_only_eager, videoml_infer or
    pytorchvideo_loop"""
    batch_size: int | None = None
    workers: int | None = None
    videos: str | None = None
    """the video set (VIDEO_SETS in videoml.bench.videos); the suite's own is "web\""""
    data: str | None = None
    """the encoding: original, or prepared (and its variants)"""
    clips_per_video: int | None = None

    @property
    def name(self) -> str:
        """``kind-framework-model-mode-backend-stage-b<batch>-w<workers>[-videos][-data][-k<clips>]``, the parts that
        apply (the defaults web, original and 1 clip per video left out)."""
        prefix = {"batch_size": "b", "workers": "w", "clips_per_video": "k"}
        defaults = {("videos", "web"), ("data", "original"), ("clips_per_video", 1)}
        return "-".join(f"{prefix.get(k, '')}{v}" for k, v in self.as_dict().items() if (k, v) not in defaults)

    @property
    def precision(self) -> str:
        """The precision the mode names (``cl3d+bf16``, ``graph+bf16``: bf16), fp32 where it names none."""
        return next((p for p in (self.mode or "").split("+") if p in PRECISION_NAMES), "fp32")

    @property
    def file_stem(self) -> str:
        """The name as a file name: a model named by a path (``hf:/models/videomae``) has separators in it."""
        return re.sub(r"[^\w.+=-]", "_", self.name)

    def as_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class Run:
    """One cell measured: the timed rounds and their statistics (None for a cell that is not timed: memory), what
    else the cell measured, and where (machine, versions, commit). ``derived`` holds what the diagnosis computes
    against other runs (fractions of a ceiling, ratios to a baseline)."""
    name: str
    cell: Cell
    samples_s: list[float] = field(default_factory=list)
    stats: dict | None = None
    items_per_step: int = 1
    unit: str = "clip"
    suite: str = ""
    framework: dict = field(default_factory=dict)
    machine: dict = field(default_factory=dict)
    commit: str | None = None
    dirty: bool | None = None
    seed: int = 0
    threads: int = 1
    timing: dict = field(default_factory=dict)
    tensorflow_loaded: bool = False
    ceiling: dict | None = None
    """decoding cells: FFmpeg decoding the same frames (clips_per_s, frames_decoded_per_clip, ffmpeg_ms_per_frame)"""
    cpu_ms_per_clip: float | None = None
    fill_cpu_ms_per_clip: float | None = None
    """decode_cached cells: the first epoch's CPU ms per clip, decoding each video whole into memory"""
    data_wait: float | None = None
    peak_memory_mb: float | None = None
    first_call_s: float | None = None
    """model cells: seconds of the first call (tracing, compiling, autotuning), untimed in the rounds"""
    operators: list | None = None
    rss_growth_mb: float | None = None
    rss_mb: float | None = None
    reads: int | None = None
    bytes: int | None = None
    """data cells: the size of the videos read"""
    clips_per_unit: int | None = None
    """infer cells: clips per video (views x crops)"""
    derived: dict = field(default_factory=dict)
    schema: str = SCHEMA

    @property
    def clips_per_s(self) -> float:
        return self.stats["clips_per_s"] if self.stats else 0.0

    def matches(self, **match) -> bool:
        return all(getattr(self.cell, k) == v for k, v in match.items())

    def as_json(self) -> dict:
        record = {k: v for k, v in asdict(self).items() if v is not None and k != "derived"}
        record["cell"] = self.cell.as_dict()
        return record

    def row(self) -> dict:
        """The summary row of ``suite.json``: the cell, the headline numbers, what else was measured and derived."""
        stats = self.stats or {}
        measured = ("cpu_ms_per_clip", "fill_cpu_ms_per_clip", "data_wait", "peak_memory_mb", "first_call_s",
                    "operators", "rss_growth_mb", "rss_mb", "reads", "bytes")
        extra = {k: getattr(self, k) for k in measured if getattr(self, k) is not None}
        return {"name": self.name, **self.cell.as_dict(), "unit": self.unit,
                **{k: stats[k] for k in ("clips_per_s", "clips_per_s_ci95", "spread", "ms_per_clip") if k in stats},
                **extra, **self.derived}

    @classmethod
    def from_json(cls, record: dict) -> "Run":
        known = {f.name for f in fields(cls)}
        return cls(**{**{k: v for k, v in record.items() if k in known}, "cell": Cell(**record["cell"])})


def write_run(run: Run, out: Path) -> None:
    (out / "runs" / f"{run.cell.file_stem}.json").write_text(json.dumps(run.as_json(), indent=2) + "\n")


def load_runs(folder: str | os.PathLike) -> dict[str, Run]:
    paths = sorted(Path(folder, "runs").glob("*.json"))
    if not paths:
        raise VideomlError(f"{folder}: no benchmark runs (runs/*.json)")
    return {run.name: run for run in (Run.from_json(json.loads(p.read_text())) for p in paths)}


def best(runs, **match) -> Run | None:
    """The fastest of the runs whose cell matches."""
    found = [r for r in runs if r.matches(**match)]
    return max(found, key=lambda r: r.clips_per_s) if found else None
