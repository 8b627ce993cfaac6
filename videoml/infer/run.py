"""``videoml infer``: classify many videos with a trained or exported model.

Decoding runs in DataLoader workers ahead of the model (one item per video, all its views decoded in one call), clips
of consecutive videos are packed into full batches, and each video's scores are aggregated as soon as its last clip is
scored. Results go to disk one video at a time (see :mod:`videoml.infer.results`).

Aggregation of a video's clip scores (``aggregate``):
  ``mean``        the mean of the clips' softmax probabilities (default; PySlowFast's and MMAction2's test rule)
  ``max``         per class, the largest softmax probability of any clip (scores then need not sum to 1)
  ``mean-logits`` the softmax of the clips' mean logits
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import torch
from jsonargparse.typing import NonNegativeInt, PositiveFloat, PositiveInt
from tqdm.auto import tqdm

from videoml.data.decoding import require_backend
from videoml.data.decoding.budget import DEFAULT_SECONDS, Seconds
from videoml.data.datasets import labeled_paths
from videoml.data.files import find_videos
from videoml.errors import UsageError, VideomlError
from videoml.evaluation import ClassReport
from videoml.fileio import output_lock
from videoml.infer.clips import VideoClips, VideoItem, decoded_items
from videoml.infer.engine import Batcher, Summary
from videoml.infer.predictor import Predictor, load_predictor
from videoml.infer.results import ResultWriter, read_records, result_key
from videoml.profiling import Profile
from videoml.runtime import parse_device
from videoml.vocab import Aggregate, Backend, Engine, MemoryFormat, Precision, check

log = logging.getLogger("videoml.infer")

EXIT_SOME_FAILED = 3  # some videos could not be classified (their records say why); usage errors exit 2


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
    precision: Precision = "fp32"
    """autocast"""
    memory_format: MemoryFormat = "auto"
    """auto: by device and architecture, as measured"""
    optimize: bool | None = None
    """run a checkpoint's (or zoo model's) fast inference graph, BatchNorm folded into the convolutions, checked
    against the model on the first batch (default: on the CPU, where it was measured to win)"""
    compile: bool = False
    """also torch.compile the model for inference (Inductor, weights frozen; compiled on the first batch, which takes
    minutes for a large model on a CPU, and checked against the model as --optimize is)"""
    shard: str | None = None
    """I/N: only the I-th (from 0) of N parts of the input list, every N-th video from the I-th, for job arrays
    (e.g. --shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT, each with its own output)"""
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

    worker_paths: ClassVar[tuple[str, ...]] = ("model",)  # the paths Ray's workers open, made absolute for them

    def outputs(self) -> tuple[str, str | None]:
        """(the JSONL records, the CSV copy or None)."""
        raise NotImplementedError

    def load(self, device: str) -> Predictor:
        return load_predictor(self.model, device, self.precision, self.memory_format, optimize=self.optimize,
                              compile=self.compile)

    def record(self, item: VideoItem, outputs: torch.Tensor, predictor: Predictor) -> dict:
        """The record of a video whose clips the model has run on (``outputs``: one row per clip and crop)."""
        raise NotImplementedError

    def error_record(self, path: str, error: str) -> dict:
        return {"path": path, "status": "error", "clips": 0, "seconds": None, "error": error}

    def timing(self, item: VideoItem) -> dict:
        """What every record of a video says of its clips and time."""
        return {"clips": item.clips, "seconds": round(item.decode_s + item.model_s, 6),
                "decode_s": round(item.decode_s, 6), "model_s": round(item.model_s, 6),
                "replaced_frames": item.replaced_frames}

    def begin(self) -> None:
        """What a kind of run does to its outputs before the first video (nothing, by default)."""

    def check(self) -> None:
        """Options that cannot work together, refused before anything runs."""
        if self.engine == "ray" and (self.devices != ("cpu",) or self.profile is not None):
            raise UsageError("--devices and --profile are the local engine's: with --engine ray the model runs on "
                             "the Ray cluster's GPUs (or CPUs), --ray-workers of them")
        for device in self.devices:
            parse_device(device)  # every device exists before any work starts
        require_backend(self.backend)
        self.shard_of()

    def shard_of(self) -> tuple[int, int]:
        """(I, N) of ``--shard I/N``; (0, 1) without it."""
        if self.shard is None:
            return 0, 1
        index, _, count = self.shard.partition("/")
        if not (index.isdigit() and count.isdigit() and int(index) < int(count)):
            raise UsageError(f"--shard must be I/N with 0 <= I < N (e.g. 0/4), got {self.shard!r}")
        return int(index), int(count)

    def finish(self) -> str | None:
        """After every video is recorded (all devices' shards merged); a line to tell the user, if any."""
        return None


@dataclass
class InferConfig(VideoRun):
    output: str = "predictions.jsonl"
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
        return self.output, self.csv

    def check(self) -> None:
        check(self.aggregate, Aggregate, "aggregate")
        if self.labels is not None:
            labeled_paths(self.labels)  # a list that cannot be read fails before the run, not after it
        super().check()

    def finish(self) -> str | None:
        """With ``labels``: the per-class report of the videos classified (all of the output, resumed runs too)."""
        if self.labels is None:
            return None
        listed = labeled_paths(self.labels)
        truth = {result_key(path): listed.classes[label] for path, label in listed.items}
        records = [r for r in read_records(self.output) if r["status"] == "ok"]
        labeled = [r for r in records if result_key(r["path"]) in truth]
        if len(labeled) < len(records):
            log.warning("%d classified videos are not in %s and left out of the report", len(records) - len(labeled),
                        self.labels)
        report = ClassReport.from_labels([truth[result_key(r["path"])] for r in labeled],
                                         [r["top_k"][0]["label"] for r in labeled], listed.classes)
        folder = report.write(Path(self.output).with_name(Path(self.output).name + ".report"))
        return f"top-1 {report.top1:.4f} over {len(labeled)} labelled videos; per-class report in {folder}"

    def error_record(self, path: str, error: str) -> dict:
        return {**super().error_record(path, error), "top_k": []}

    def record(self, item: VideoItem, outputs: torch.Tensor, predictor: Predictor) -> dict:
        classes = predictor.classes
        scores = aggregate(outputs, self.aggregate)
        record = {"path": item.path, "status": "ok", "top_k": _top(scores, classes, self.top_k), **self.timing(item),
                  "error": None}
        if self.per_clip or self.dense is not None:
            crops = item.crops
            segments = []
            for k in range(len(item.starts)):
                clip_scores = aggregate(outputs[k * crops:(k + 1) * crops], self.aggregate)  # a clip's crops
                segments.append({"start": round(float(item.starts[k]), 4), "end": round(float(item.ends[k]), 4),
                                 "top_k": _top(clip_scores, classes, self.top_k)})
            record["timeline" if self.dense is not None else "per_clip"] = segments
        return record


def expand_inputs(inputs: list[str]) -> list[str]:
    """Files, folders (recursive), globs, and list files (``@file``, or a ``.txt`` / ``.lst`` file: one path a line,
    relative paths taken from the list's folder)."""
    items: list[str] = []
    for item in inputs:
        listed = item[1:] if item.startswith("@") else item if Path(item).suffix in (".txt", ".lst") else None
        if listed is None:
            items.append(item)
            continue
        try:
            lines = Path(listed).read_text().splitlines()
        except OSError as e:
            raise UsageError(f"{listed}: cannot read the list file ({e.strerror})") from None
        base = Path(listed).parent
        for number, line in enumerate(lines, 1):
            if line.strip() and not line.startswith("#"):
                path = base / line.strip()
                if not path.exists() and not glob.has_magic(str(path)):
                    raise UsageError(f"{listed}, line {number}: {line.strip()[:80]}: no such file (a .txt or .lst "
                                     "input is a list of videos, one a line)")
                items.append(str(path))
    return [str(p) for p in find_videos(items)] if items else []


def aggregate(logits: torch.Tensor, rule: str) -> torch.Tensor:
    """(clips, classes) logits -> (classes,) video scores by ``rule`` (see module doc)."""
    check(rule, Aggregate, "aggregate")
    if rule == "mean":
        return logits.softmax(-1).mean(0)
    if rule == "max":
        return logits.softmax(-1).max(0).values
    return logits.mean(0).softmax(-1)  # mean-logits


def _top(scores: torch.Tensor, classes, k: int) -> list[dict]:
    values, indices = scores.topk(min(k, len(scores)))
    return [{"label": classes[i], "score": round(float(v), 6)} for v, i in zip(values, indices.tolist())]


def _run_shard(config: VideoRun, paths: list[str], device: str, output: str, csv: str | None,
               position: int = 0) -> Summary:
    """Run the model over ``paths`` on one device, appending their records to ``output``."""
    predictor = config.load(device)
    card = predictor.card
    views, crops = config.views or card.views, config.crops or card.crops
    summary = Summary()
    started = time.perf_counter()
    with ResultWriter(output, csv, resume=config.resume, overwrite=config.overwrite) as writer:
        todo = [p for p in paths if result_key(p) not in writer.done]
        summary.skipped = len(paths) - len(todo)
        dataset = VideoClips(todo, card.input, views=views, crops=crops, dense_step=config.dense,
                             backend=config.backend, decode_timeout=config.decode_timeout)
        items = decoded_items(dataset, config.num_workers, pin_memory=predictor.device.type == "cuda")
        bar = tqdm(total=len(paths), initial=summary.skipped, unit="video", position=position,
                   disable=not config.progress, desc=device if len(config.devices) > 1 else None)
        profile = Profile(config.profile, predictor.device.type) if config.profile else None
        batcher = Batcher(predictor, config.batch_size, profile)

        def write(record: dict) -> None:
            writer.write(record)
            summary.add(record)
            bar.update()

        def finish(items):
            for item in items:
                write(config.error_record(item.path, item.error) if item.error else
                      config.record(item, torch.cat(item.outputs), predictor))

        with profile or contextlib.nullcontext():
            for item in items:
                batcher.add(item)
                finish(batcher.ready())
            finish(batcher.ready(final=True))
        bar.close()
    summary.seconds = time.perf_counter() - started
    return summary


def _shard_worker(args) -> dict:
    config, paths, device, output, position = args
    return dataclasses.asdict(_run_shard(config, paths, device, output, None, position))


def infer(config: VideoRun) -> Summary:
    """Run the model over the inputs as configured (:class:`InferConfig`: classify; ``ExtractConfig``: embed);
    returns the counts. One process per device when there are several."""
    config.check()
    if config.dense is not None and config.dense <= 0:
        raise UsageError(f"--dense needs a step in seconds > 0, got {config.dense}")
    paths = list({result_key(p): p for p in reversed(expand_inputs(config.inputs))}.values())[::-1]
    if not paths:  # (each video once, however it is spelled; the first spelling kept)
        raise UsageError("no input videos")
    index, count = config.shard_of()
    if index >= len(paths):
        raise UsageError(f"shard {config.shard} of {len(paths)} input videos holds none")
    paths = paths[index::count]
    config.begin()
    output, csv = config.outputs()
    if config.engine == "ray":
        from videoml.infer.ray_engine import run_ray

        summary = run_ray(config, paths, output, csv)
    elif len(config.devices) == 1:
        summary = _run_shard(config, paths, config.devices[0], output, csv)
    else:
        summary = _run_sharded(config, paths, output, csv)
    summary.message = config.finish()
    return summary


def _run_sharded(config: VideoRun, paths: list[str], output: str, csv: str | None) -> Summary:
    """Shard k of n takes every n-th video and writes ``<output>.part<k>``; the parts are merged into ``output`` in
    input order at the end (and, after an interrupted run, by the next ``--resume``)."""
    out = Path(output)
    with output_lock([p for p in (out, csv) if p]):  # held for the whole run; the shards lock their parts
        return _run_shards(config, paths, out, csv)


def _run_shards(config: VideoRun, paths: list[str], out: Path, csv: str | None) -> Summary:
    from concurrent.futures.process import BrokenProcessPool

    from videoml.processes import process_pool

    parts = [out.with_name(f"{out.name}.part{k}") for k in range(len(config.devices))]
    merged = ResultWriter(out, csv, resume=config.resume, overwrite=config.overwrite, lock=False)
    merged.close()
    if not config.resume:  # parts an interrupted run left belong to the output just replaced
        for part in parts:
            part.unlink(missing_ok=True)
    remaining = [p for p in paths if result_key(p) not in merged.done]
    started = time.perf_counter()
    jobs = [(dataclasses.replace(config, resume=True, overwrite=False), remaining[k::len(parts)], device, str(part), k)
            for k, (device, part) in enumerate(zip(config.devices, parts))]
    try:
        with process_pool(len(jobs)) as pool:
            results = [Summary(**r) for r in pool.map(_shard_worker, jobs)]
    except BrokenProcessPool:  # a shard process was killed: what the shards wrote is kept in their parts
        raise VideomlError(f"a shard process died; run again with --resume to finish {out} (what was written is "
                           "kept)") from None
    by_path = {r["path"]: r for part in parts for r in read_records(part)}
    with ResultWriter(out, csv, resume=True, lock=False) as writer:
        for path in remaining:
            if path in by_path:
                writer.write(by_path[path])
    for part in parts:
        part.unlink()
    summary = Summary(done=sum(r.done for r in results), failed=sum(r.failed for r in results),
                      skipped=len(paths) - len(remaining) + sum(r.skipped for r in results),
                      clips=sum(r.clips for r in results), seconds=time.perf_counter() - started)
    return summary
