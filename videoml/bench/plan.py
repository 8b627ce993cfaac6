"""``videoml bench plan``: measured per-stage rates turned into a capacity plan for a stated workload: epoch time,
the stage that bounds it, the decoding cores and storage bandwidth it needs, and videos per hour for inference.

A training epoch streams ``videos x clips_per_video`` clips through three stages per GPU, and the slowest bounds it:

- **model**: the train step's clips/s at the workload's batch and precision, from :data:`GPU_RATES` (figures
  measured on named GPUs, each with its source) or, with ``gpu: measured``, from the results folder's own device
  (its fit_step where measured: the step inside ``videoml fit``'s training loop);
- **decoding**: the loader's CPU time per clip (``cpu_ms_per_clip`` of the results folder's decode stage for the
  model, encoding and clips per video) spread over the loader's cores: the cores per GPU but one (the training
  process's);
- **storage**: the node's read bandwidth shared by its GPUs, over the bytes a clip costs (the data set's size per
  video, divided by the clips cut from each video).

On a CPU device (the results measured there, ``gpu: measured``) the model and the loader share the same cores, so
their times per clip add up instead of overlapping (the loader's whole CPU time: the model's threads on every core
wait for the one it takes). With the decoded videos kept in memory (``decoded_cache``) the first epoch decodes each
video whole (the decode_cached stage's ``fill_cpu_ms_per_clip``) and later ones only cut clips from memory (its
``cpu_ms_per_clip``).
"""

from __future__ import annotations

from dataclasses import dataclass

from typing import Literal

from videoml.bench.records import Run, best
from videoml.bench.videos import ENCODINGS
from videoml.errors import UsageError
from videoml.vocab import check

# GPU -> model -> precision -> {stage: clips/s} and where the figures come from: random clips at the model's canonical
# input, batch 16, the fastest memory format (`videoml bench model --device cuda`).
H100_SOURCE = ("docs/benchmarks.md, 'Execution modes': videoml bench model --device cuda, batch 16, one NVIDIA H100 "
               "80GB HBM3, torch 2.11.0+cu130, 2026-11-26")
GPU_RATES = {
    "h100": {
        "x3d_s": {"fp32": {"forward": 1543, "train_step": 271}, "bf16": {"forward": 1043, "train_step": 248}},
        "slow_r50": {"fp32": {"forward": 760, "train_step": 272}, "bf16": {"forward": 1110, "train_step": 305}},
        "slowfast_r50": {"fp32": {"forward": 377, "train_step": 120}, "bf16": {"forward": 339, "train_step": 131}},
    },
}
GPU_SOURCES = {"h100": H100_SOURCE}


@dataclass(frozen=True)
class Workload:
    """What is planned: the data, the model and the machines."""
    videos: int = 240_000
    """training videos (Kinetics-400's training set: about 240,000)"""
    clips_per_video: int = 1
    epochs: int = 1
    model: str = "x3d_s"
    encoding: str = "prepared"
    """how the videos are stored: original, or prepared (videoml data prepare)"""
    precision: Literal["fp32", "bf16"] = "fp32"
    gpu: str = "h100"
    """a GPU of the table of measured rates, or measured: the results folder's own device"""
    gpus: int = 8
    gpus_per_node: int = 8
    cpu_cores_per_gpu: int = 16
    dataset_gb: float | None = None
    """the stored data set's size (storage is left out of the plan without it)"""
    storage_gb_s: float | None = None
    """read bandwidth per node"""
    views: int = 10
    """inference: clips per video (temporal views x crops)"""
    decoded_cache: bool = False
    """the decoded videos kept in memory (fit's data.decoded_cache_mb): decoding and storage are paid in the first
    epoch only; later epochs' loaders only cut clips from memory"""

    def __post_init__(self):
        check(self.encoding, ENCODINGS, "encoding")
        small = {k: v for k, v in vars(self).items() if type(v) is int and v < 1}  # (not the bools)
        if small:
            raise UsageError("these must be >= 1: " + ", ".join(f"{k} (got {v})" for k, v in small.items()))


@dataclass(frozen=True)
class Rate:
    clips_per_s: float
    source: str


def model_rate(runs: list[Run], work: Workload, stage: str) -> Rate:
    """The model's clips/s per GPU at ``stage`` (train_step or forward). Planned from a results folder's own device,
    training is the fit_step where measured (the step as ``videoml fit`` runs it: Lightning's loop, collation,
    normalisation, logging), else the bare train_step."""
    if work.gpu != "measured":
        try:
            rate = GPU_RATES[work.gpu][work.model][work.precision][stage]
        except KeyError:
            known = ", ".join(f"{g}: {', '.join(models)}" for g, models in GPU_RATES.items())
            raise UsageError(f"no measured {stage} rate for {work.model} ({work.precision}) on {work.gpu!r}; the "
                             f"table has {known}; or plan from a results folder's own device (--gpu measured)")
        return Rate(rate, GPU_SOURCES[work.gpu])
    for measured in ("fit_step", "train_step") if stage == "train_step" else (stage,):
        top = best([r for r in runs if r.matches(kind="model", framework="torch", model=work.model, stage=measured)
                    and r.cell.precision == work.precision])
        if top is not None:
            return Rate(top.clips_per_s, f"{top.name} ({top.machine.get('cpu') or top.machine.get('device')})")
    raise UsageError(f"the results have no {stage} of {work.model} at {work.precision}: run videoml bench model "
                     f"--models {work.model} (or a suite with it) first")


def loader_rate(runs: list[Run], work: Workload, into_memory: bool = False) -> Rate:
    """The loader's clips per CPU-second (per loader core): decoding at the encoding and clips per video
    (``cpu_ms_per_clip`` of the decode stage), or ``into_memory`` (a training run's first epoch with the decoded
    videos cached) decoding each video whole (the decode_cached stage's ``fill_cpu_ms_per_clip``)."""
    if into_memory:
        cached = _data_run(runs, work, "decode_cached")
        return Rate(1000 / cached.fill_cpu_ms_per_clip, cached.name + " (first epoch: decoding into memory)")
    decode = _data_run(runs, work, "decode")
    return Rate(1000 / decode.cpu_ms_per_clip, decode.name)


def _data_run(runs: list[Run], work: Workload, kind: str) -> Run:
    """The decode (or decode_cached) run of the model at the workload's encoding and clips per video."""
    found = best(runs, kind=kind, model=work.model, clips_per_video=work.clips_per_video, data=work.encoding)
    if found is None or not found.cpu_ms_per_clip:
        have = sorted({(r.cell.model, r.cell.data, r.cell.clips_per_video) for r in runs if r.cell.kind == kind})
        raise UsageError(f"the results have no {kind} stage for {work.model}, {work.encoding} data, "
                         f"{work.clips_per_video} clips per video (they have {have or 'none'}): run a suite with "
                         f"the {kind} stage" + (" (or videoml bench decode)" if kind == "decode" else ""))
    return found


def _shares_cores(runs: list[Run], work: Workload) -> bool:
    """Whether the model runs on the loader's cores: planned from a CPU's own measurements."""
    return work.gpu == "measured" and all(r.machine.get("device") in (None, "cpu", r.machine.get("cpu")) for r in runs
                                          if r.cell.kind == "model")  # (a run names its device: the CPU's name)


def _bound(stages: dict, shared: bool) -> tuple[str, float]:
    """(the bounding stage, clips/s): the slowest stage, or on shared cores the model and the loader's times added."""
    bound = min(stages, key=stages.get)
    if shared:
        return bound, 1 / sum(1 / rate for rate in stages.values())
    return bound, stages[bound]


def _loader_cores(work: Workload, shared: bool) -> int:
    """The loader's cores per GPU: all but the training process's; on shared cores, as if one: the model's threads
    take every core and wait at each operator's end for the one the loader worker holds, so the loader's CPU time
    delays the step by all of it (on the demo and the full-size CPU run its time spread over the cores planned both
    shorter than measured; docs/benchmarks.md)."""
    return 1 if shared else max(work.cpu_cores_per_gpu - 1, 1)


def _per_gpu(runs: list[Run], work: Workload, stage: str) -> tuple[dict, dict, bool, float]:
    """The model's (at ``stage``) and the loader's clips/s per GPU, their sources, whether they share the cores, and
    the loader's clips/s per core."""
    model = model_rate(runs, work, stage)
    loader = loader_rate(runs, work, into_memory=work.decoded_cache and stage == "train_step")  # (not inference's)
    shared = _shares_cores(runs, work)
    return ({"model": model.clips_per_s, "decoding": loader.clips_per_s * _loader_cores(work, shared)},
            {"model": model.source, "decoding": loader.source}, shared, loader.clips_per_s)


def train(runs: list[Run], work: Workload) -> dict:
    """The training plan: per-GPU rate of each stage, the bound, epoch time and what the data path needs."""
    stages, sources, shared, per_core = _per_gpu(runs, work, "train_step")
    bytes_per_clip = work.dataset_gb * 1e9 / work.videos / work.clips_per_video if work.dataset_gb else None
    if bytes_per_clip and work.storage_gb_s:
        stages["storage"] = work.storage_gb_s * 1e9 / min(work.gpus, work.gpus_per_node) / bytes_per_clip
    bound, rate = _bound(stages, shared)
    clips = work.videos * work.clips_per_video
    epoch_s = later_s = clips / (rate * work.gpus)
    if work.decoded_cache:  # later epochs: the model, and the loader cutting clips from the decoded videos
        cached = _data_run(runs, work, "decode_cached")
        later = {"model": stages["model"], "cutting": 1000 / cached.cpu_ms_per_clip * _loader_cores(work, shared)}
        later_s = clips / (_bound(later, shared)[1] * work.gpus)
        sources["cutting"] = cached.name
    return {"stages": stages, "bound": bound, "clips_per_s_per_gpu": rate, "epoch_s": epoch_s,
            "later_epoch_s": later_s, "total_s": epoch_s + later_s * (work.epochs - 1),
            "decode_cores_per_gpu": stages["model"] / per_core,
            "storage_gb_s": rate * work.gpus * bytes_per_clip / 1e9 if bytes_per_clip else None, "sources": sources}


def infer(runs: list[Run], work: Workload) -> dict:
    """Inference: videos per hour per node, and its bound (the forward or the decoding of ``views`` clips)."""
    stages, sources, shared, _ = _per_gpu(runs, work, "forward")
    bound, rate = _bound(stages, shared)
    return {"bound": bound, "videos_per_hour_per_node": 3600 * rate * work.gpus_per_node / work.views,
            "stages": stages, "sources": sources}


def _duration(seconds: float) -> str:
    hours, rest = divmod(seconds, 3600)
    if seconds < 60:
        return f"{seconds:.1f} s"
    return f"{int(hours)} h {rest / 60:.0f} min" if hours else f"{seconds / 60:.1f} min"


def render(work: Workload, training: dict, inference: dict) -> str:
    """The plan as Markdown: the workload, each stage's clips/s per GPU and its source, and the answers."""
    lines = [f"# plan: {work.model} ({work.precision}), {work.videos:,} videos x {work.clips_per_video} clips, "
             f"{work.encoding} data, {work.gpus} x {work.gpu} ({work.gpus_per_node} a node, "
             f"{work.cpu_cores_per_gpu} CPU cores each)", "", "| training stage | clips/s per GPU | from |",
             "|---|---|---|"]
    lines += [f"| {stage}{' (bound)' if stage == training['bound'] else ''} | {rate:.1f} | "
              f"{training['sources'].get(stage, 'the stated bandwidth and data set size')} |"
              for stage, rate in training["stages"].items()]
    storage = training["storage_gb_s"]
    cached = (f"; with the decoded videos cached, later epochs {_duration(training['later_epoch_s'])} (clips cut "
              f"from memory: {training['sources'].get('cutting')})" if work.decoded_cache else "")
    lines += ["", f"- epoch: {_duration(training['epoch_s'])} ({training['clips_per_s_per_gpu']:.1f} clips/s per GPU, "
              f"bound by {training['bound']}){cached}; {work.epochs} epochs: {_duration(training['total_s'])}",
              f"- decoding cores per GPU to keep up with the model: {training['decode_cores_per_gpu']:.1f}",
              f"- storage read: {storage:.2f} GB/s for the whole run" if storage is not None else
              "- storage: not planned (state --dataset-gb and --storage-gb-s)",
              f"- inference ({work.views} clips per video): {inference['videos_per_hour_per_node']:,.0f} videos/hour "
              f"per node, bound by {inference['bound']}" if "missing" not in inference else
              f"- inference: not planned ({inference['missing']})"]
    return "\n".join(lines) + "\n"


def plan(runs: list[Run], work: Workload) -> str:
    """The plan as Markdown: training, and inference where the results have what it needs (the model's forward)."""
    try:
        inference = infer(runs, work)
    except UsageError as e:
        inference = {"missing": str(e)}
    return render(work, train(runs, work), inference)
