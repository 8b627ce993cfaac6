"""What ``videoml infer`` and ``videoml extract`` are asked to do: their options (the command line's, from these
dataclasses' fields and docstrings) and what each kind of run records of a video.

Light to import (no torch): ``--help`` and the checks of options read this module; what a run needs (the model, the
clips, the feature files) is imported by the methods that use it.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

from jsonargparse.typing import NonNegativeInt, PositiveFloat, PositiveInt

from videoml.data.datasets import labeled_paths
from videoml.data.decoding import require_backend
from videoml.data.decoding.budget import DEFAULT_SECONDS, Seconds
from videoml.data.files import job_part
from videoml.errors import UsageError, install_hint
from videoml.fileio import write_atomic
from videoml.infer.results import read_records, result_key
from videoml.vocab import (PRECISION_NAMES, Aggregate, Backend, Engine, FeatureFormat, InferPrecision, MemoryFormat,
                           check)

log = logging.getLogger("videoml.infer")
INDEX = "index.jsonl"  # extract's records, in its output folder
SETTINGS = "extract.json"  # what decides the features; a resumed run must have the same


@dataclass
class VideoRun:
    """What every run of a model over video files shares (``videoml infer``, ``videoml extract``): the inputs, how
    their clips are sampled and decoded, where the model runs, and resuming. A kind of run says what it loads
    (:meth:`load`), what it records of a video (:meth:`record`) and where (:meth:`outputs`)."""

    model: str
    """checkpoint (.ckpt), exported model (.ts TorchScript, .pt2 torch.export, .onnx), or published weights
    (zoo:NAME)"""
    inputs: list[str]
    """video files, folders (recursive), glob patterns, list files (@list or *.txt / *.lst: one path a line)"""
    views: PositiveInt | None = None
    """temporal views per video (default: the model's recipe)"""
    crops: Literal[1, 3] | None = None
    """spatial crops per view (default: the model's recipe)"""
    dense: Seconds | None = None
    """clips every this many seconds over the whole video instead of views: a timeline of segments"""
    batch_size: PositiveInt = 16
    """clips per model call"""
    num_workers: NonNegativeInt = 2
    """decoding processes, 0 to decode in the main process (the local engine; Ray decodes on every CPU it has)"""
    backend: Backend = "pyav"
    decode_timeout: Seconds | None = DEFAULT_SECONDS
    """seconds a video may take to read; a slower one is recorded as failed"""
    devices: tuple[str, ...] = ("cpu",)
    """cpu, cuda, cuda:1, or several (one process per device, outputs merged)"""
    precision: InferPrecision = "auto"
    """auto: bfloat16 autocast on a CPU that computes bfloat16 in hardware (AVX512-BF16, AMX), where it was measured
    faster with the same answers, else float32 (docs/benchmarks.md); or float32 (32-true), or autocast to bfloat16
    / float16 (the values of fit's --trainer.precision); checked against float32 on the first batch"""
    memory_format: MemoryFormat = "auto"
    """auto: by device and architecture, as measured"""
    optimize: bool | None = None
    """run a checkpoint's (or zoo model's) fast inference graph, BatchNorm folded into the convolutions, checked
    against the model on the first batch (default: on the CPU, where it was measured to win)"""
    compile: bool = False
    """also torch.compile the model for inference (Inductor, weights frozen; compiled on the first batch, which takes
    minutes for a large model on a CPU, and checked against the model as --optimize is)"""
    part: str | None = None
    """I/N: only the I-th (from 0) of N parts of the input list, every N-th video from the I-th, for job arrays
    (e.g. --part $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT, each with its own output; as data shard's --part)"""
    engine: Engine = "local"
    """local: this machine (a process per device); ray: decoding as Ray tasks on the CPUs of a Ray cluster, the
    model in Ray actors on its GPUs (pip install 'videoml[ray]'; see docs/inference.md)"""
    ray_address: str | None = None
    """the Ray cluster to run on (default: $RAY_ADDRESS, else a local instance started for the run)"""
    ray_workers: PositiveInt | None = None
    """model actors (default: one per GPU of the cluster, or one on CPUs)"""
    ray_model_cpus: PositiveFloat = 1.0
    """CPUs each model actor holds (its torch threads)"""
    resume: bool = False
    """go on with an existing output, skipping videos in it"""
    overwrite: bool = False
    """replace an existing output"""
    progress: bool = True
    profile: str | None = None
    """profile the model calls into this folder (given alone: beside the output)"""
    parquet: str | None = None
    """also write the records as a Parquet table here when the run ends, one row per video, and one row per clip in
    its .clips.parquet sibling where clips are recorded (schema: docs/inference.md)"""

    worker_paths: ClassVar[tuple[str, ...]] = ("model",)  # the paths Ray's workers open, made absolute for them

    def outputs(self) -> tuple[str, str | None]:
        """(the JSONL records, the CSV copy or None)."""
        raise NotImplementedError

    # (The methods' arguments are named, not typed: a type jsonargparse finds in this module it resolves, and these
    # would load torch for --help. ``item``: a VideoItem of videoml.infer.clips; ``outputs``: a tensor, one row per
    # clip and crop; ``predictor``: a Predictor of videoml.infer.predictor, what ``load`` returns.)
    def load(self, device: str):
        from videoml.infer.predictor import load_predictor

        return load_predictor(self.model, device, self.precision, self.memory_format, optimize=self.optimize,
                              compile=self.compile)

    def record(self, item, outputs, predictor) -> dict:
        """The record of a video whose clips the model has run on (``outputs``: one row per clip and crop)."""
        raise NotImplementedError

    def error_record(self, path: str, error: str) -> dict:
        return {"path": path, "status": "error", "clips": 0, "seconds": None, "error": error}

    def measured(self, item, predictor) -> dict:
        """What every record of a video says of its clips, their time and the precision the model ran them at (what
        was asked, or float32 where the first batch's check against the float32 model gave way to it)."""
        return {"clips": item.clips, "seconds": round(item.decode_s + item.model_s, 6),
                "decode_s": round(item.decode_s, 6), "model_s": round(item.model_s, 6),
                "replaced_frames": item.replaced_frames, "precision": predictor.precision}

    def begin(self) -> None:
        """What a kind of run does to its outputs before the first video (nothing, by default)."""

    def check(self) -> None:
        """Options that cannot work together, refused before anything runs."""
        if self.engine == "ray" and (self.devices != ("cpu",) or self.profile is not None):
            raise UsageError("--devices and --profile are the local engine's: with --engine ray the model runs on "
                             "the Ray cluster's GPUs (or CPUs), --ray-workers of them")
        from videoml.runtime import parse_device

        for device in self.devices:
            parse_device(device)  # every device exists before any work starts
        require_backend(self.backend)
        self.part_of()
        if self.parquet is not None:
            if Path(self.parquet).resolve() in {Path(p).resolve() for p in self.outputs() if p}:
                raise UsageError(f"--parquet {self.parquet} is the run's other output; give it its own name")
            if importlib.util.find_spec("pyarrow") is None:
                raise UsageError(f"--parquet needs pyarrow: {install_hint('pyarrow')}")

    def table_rows(self):
        """``rows(record) -> (video row, clip rows)`` of this kind's Parquet tables (:mod:`videoml.infer.tables`)."""
        raise NotImplementedError

    def part_of(self) -> tuple[int, int]:
        """(I, N) of ``--part I/N``; (0, 1) without it."""
        return (0, 1) if self.part is None else job_part(self.part)

    def finish(self) -> str | None:
        """After every video is recorded (all devices' shards merged); a line to tell the user, if any."""
        return None


@dataclass
class InferConfig(VideoRun):
    out: str = "predictions.jsonl"
    """JSONL results file"""
    csv: str | None = None
    """also write the results as CSV here"""
    top_k: PositiveInt = 5
    aggregate: Aggregate = "mean"
    """how clip scores make a video's: mean of softmax, max of softmax, softmax of the mean logits"""
    per_clip: bool = False
    """also record every view's top-k"""
    labels: str | None = None
    """the inputs' true classes ('<path> <label>' a line, classes.txt beside it, as split files): also write a
    per-class report with a confusion matrix into OUTPUT.report"""

    def outputs(self) -> tuple[str, str | None]:
        return self.out, self.csv

    def check(self) -> None:
        check(self.aggregate, Aggregate, "aggregate")
        if self.labels is not None:
            labeled_paths(self.labels)  # a list that cannot be read fails before the run, not after it
        super().check()

    def finish(self) -> str | None:
        """With ``labels``: the per-class report of the videos classified (all of the output, resumed runs too)."""
        if self.labels is None:
            return None
        from videoml.evaluation import ClassReport

        listed = labeled_paths(self.labels)
        truth = {result_key(path): listed.classes[label] for path, label in listed.items}
        records = [r for r in read_records(self.out) if r["status"] == "ok"]
        labeled = [r for r in records if result_key(r["path"]) in truth]
        if len(labeled) < len(records):
            log.warning("%d classified videos are not in %s and left out of the report", len(records) - len(labeled),
                        self.labels)
        report = ClassReport.from_labels([truth[result_key(r["path"])] for r in labeled],
                                         [r["top_k"][0]["label"] for r in labeled], listed.classes)
        folder = report.write(Path(self.out).with_name(Path(self.out).name + ".report"))
        return f"top-1 {report.top1:.4f} over {len(labeled)} labelled videos; per-class report in {folder}"

    def error_record(self, path: str, error: str) -> dict:
        return {**super().error_record(path, error), "top_k": []}

    def table_rows(self):
        from videoml.infer.tables import infer_rows

        return infer_rows

    def record(self, item, outputs, predictor) -> dict:
        from videoml.infer.run import aggregate, top_k

        classes = predictor.classes
        scores = aggregate(outputs, self.aggregate)
        record = {"path": item.path, "status": "ok", "top_k": top_k(scores, classes, self.top_k),
                  **self.measured(item, predictor), "error": None}
        if self.per_clip or self.dense is not None:
            crops = item.crops
            segments = []
            for k in range(len(item.starts)):
                clip_scores = aggregate(outputs[k * crops:(k + 1) * crops], self.aggregate)  # a clip's crops
                segments.append({"start": round(float(item.starts[k]), 4), "end": round(float(item.ends[k]), 4),
                                 "top_k": top_k(clip_scores, classes, self.top_k)})
            record["timeline" if self.dense is not None else "per_clip"] = segments
        return record


@dataclass
class ExtractConfig(VideoRun):
    out: str = "features"
    """output folder: index.jsonl, clips/NAME.npy, videos/NAME.npy (and features.h5 with --format hdf5)"""
    layer: str | None = None
    """'head' (default): the classifier's input; or a block's name (e.g. blocks.4), its output pooled over time and
    space (default for a `videoml export --features` file: the layer it was exported with)"""
    format: FeatureFormat = "npy"
    """npy: an array per video and clip set, plus the index; hdf5: also one features.h5 packed at the end"""

    worker_paths = ("model", "out")

    def outputs(self) -> tuple[str, str | None]:
        return str(Path(self.out) / INDEX), None

    def check(self) -> None:
        check(self.format, FeatureFormat, "format")
        super().check()

    def settings(self) -> dict:
        """The options that decide what the features are: a resumed run with others would mix them in one index."""
        from videoml.infer.predictor import resolve_precision

        model = result_key(self.model) if os.path.exists(self.model) else self.model
        return {"model": model, "layer": self.layer, "views": self.views, "crops": self.crops, "dense": self.dense,
                "precision": resolve_precision(self.model, self.devices[0], self.precision)}

    def begin(self) -> None:
        """Record :meth:`settings` in ``OUT/extract.json``; refuse to resume an output made with others."""
        path, settings, index = Path(self.out) / SETTINGS, self.settings(), Path(self.out) / INDEX
        if index.is_file() and index.stat().st_size and not (self.resume or self.overwrite):
            return  # the run stops at its existing output (ResultWriter), which it leaves as it is
        if self.resume and path.is_file():
            try:
                recorded = json.loads(path.read_text())["settings"]
                old = recorded.get("precision")  # as earlier releases named it: the same precision
                recorded["precision"] = PRECISION_NAMES.get(old, old)
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                recorded = None
            changed = [f"{k} {recorded.get(k)!r} -> {v!r}" for k, v in settings.items()
                       if recorded is not None and recorded.get(k) != v]
            if recorded is None or changed:
                raise UsageError(f"{self.out}: its features were extracted with other settings ("
                                 f"{'; '.join(changed) or 'unreadable ' + SETTINGS}); resume with the same ones, "
                                 "or --overwrite, or another output folder")
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps({"settings": settings}, indent=2) + "\n")

    def load(self, device: str):
        from videoml.infer.predictor import load_predictor

        return load_predictor(self.model, device, self.precision, self.memory_format, features=self.layer or "",
                              optimize=self.optimize, compile=self.compile)

    def record(self, item, outputs, predictor) -> dict:
        from videoml.infer.features import save_features

        name = save_features(self.out, item.path, outputs)
        return {"path": item.path, "status": "ok", "features": name, "dim": int(outputs.shape[1]),
                "crops": item.crops, "starts": [round(float(s), 4) for s in item.starts],
                "ends": [round(float(e), 4) for e in item.ends], **self.measured(item, predictor), "error": None}

    def table_rows(self):
        from videoml.infer.tables import extract_rows

        return extract_rows(self.out)

    def finish(self) -> str | None:
        from videoml.infer.features import pack_hdf5

        return f"packed into {pack_hdf5(self.out)}" if self.format == "hdf5" else None
