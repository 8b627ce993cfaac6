"""``videoml bench infer``: ``videoml infer`` against the PyTorchVideo tutorial loop and against the model alone.

On the same videos (H.264 320x240, 30 fps, 10 s, GOP 60 with B-frames, made once under ``data``), the same model
(random weights: speed does not depend on them), the same views and crops:

- ``pytorchvideo_loop``: the PyTorchVideo inference tutorial's way, per video ``EncodedVideo.from_path``, then per
  view ``get_clip(start, end)``, its transforms (``UniformTemporalSubsample``, /255, ``NormalizeVideo``,
  ``ShortSideScale``, ``CenterCropVideo``) and one model call per clip, in the main process.
- ``videoml_infer``: :func:`videoml.infer.run.infer` with ``num_workers`` decoding processes and clips of several
  videos batched.
- ``model_only``: the model on a batch already in memory (uint8 clips, normalised on the device as ``infer`` does):
  the ceiling ``infer`` reaches when decoding is entirely hidden behind compute.

Each measurement is repeated; the median counts. Reported: videos/s and clips/s, ``infer`` over the tutorial loop
(videos/s), and ``infer`` over model-only (clips/s).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from videoml.bench.common import random_clips, ten_second_videos, timed_row, write as write_results
from videoml.bench.measure import Timing, time_rounds
from videoml.data.transforms import pack_pathways
from videoml.environment import environment
from videoml.infer.predictor import load_predictor
from videoml.infer.run import InferConfig, infer
from videoml.models.registry import build_model, model_input
from videoml.models.weights import ModelCard, save_checkpoint
from videoml.runtime import parse_device
from videoml.vocab import Precision


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
    repeats: int = 3
    seed: int = 0


def _tutorial_loop(paths: list[Path], model: torch.nn.Module, card: ModelCard, views: int, device: torch.device):
    """PyTorchVideo's inference tutorial, one video at a time, one model call per clip."""
    from pytorchvideo.data.encoded_video import EncodedVideo
    from pytorchvideo.transforms import ApplyTransformToKey, ShortSideScale, UniformTemporalSubsample
    from torchvision.transforms import Compose, Lambda
    from torchvision.transforms._transforms_video import CenterCropVideo, NormalizeVideo

    spec = card.input
    transform = ApplyTransformToKey(key="video", transform=Compose([
        UniformTemporalSubsample(spec.frames), Lambda(lambda x: x / 255.0), NormalizeVideo(spec.mean, spec.std),
        ShortSideScale(size=spec.eval_scale), CenterCropVideo(spec.crop)]))
    fps = 30.0
    clip_seconds = spec.frames * spec.stride / fps
    for path in paths:
        video = EncodedVideo.from_path(str(path), decode_audio=False, decoder="pyav")
        last = max(float(video.duration) - clip_seconds, 0.0)
        scores = []
        for i in range(views):
            start = last * i / max(views - 1, 1)
            clip = transform(video.get_clip(start, start + clip_seconds))["video"]
            batch = pack_pathways(clip[None], spec.slowfast_alpha)  # the tutorial's PackPathway for SlowFast
            batch = [b.to(device) for b in batch] if isinstance(batch, list) else batch.to(device)
            with torch.inference_mode():
                scores.append(model(batch).softmax(-1))
        video.close()
        torch.stack(scores).mean(0).cpu()


def _whole_runs(run, repeats: int) -> list[float]:
    """Seconds per whole run of ``run()``, ``repeats`` times."""
    return time_rounds(run, Timing(warmup=0, steps=1, repeats=repeats, max_spread=None))


def run(bench: InferBench) -> dict:
    import videoml  # noqa: F401  (compat before pytorchvideo)

    _, paths = ten_second_videos(bench.data, "infer", bench.videos)
    device = parse_device(bench.device)
    labels = tuple(f"class_{i}" for i in range(400))  # a Kinetics-sized head
    card = ModelCard(bench.model, labels, model_input(bench.model), views=bench.views, crops=bench.crops)
    torch.manual_seed(bench.seed)
    model = build_model(bench.model, len(labels)).eval()
    clips = len(paths) * bench.views * bench.crops
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = Path(tmp) / "model.ckpt"
        save_checkpoint(model, card, checkpoint)
        predictor = load_predictor(checkpoint, device, bench.precision)
        batch = random_clips(card.input, bench.batch_size, dtype=torch.uint8)
        model_only = timed_row(time_rounds(lambda: predictor(batch), Timing(3, 5, bench.repeats, max_spread=None)),
                               bench.batch_size, scenario="model_only")
        options = InferConfig(model=str(checkpoint), inputs=[str(p) for p in paths], output=str(Path(tmp) / "out"),
                              batch_size=bench.batch_size, num_workers=bench.num_workers, devices=(bench.device,),
                              precision=bench.precision, progress=False, overwrite=True)
        ours = timed_row(_whole_runs(lambda: _infer_all(options), bench.repeats), clips, scenario="videoml_infer")
        baseline = paths[: bench.baseline_videos]
        loop_model = model.to(device)
        loop = timed_row(_whole_runs(lambda: _tutorial_loop(baseline, loop_model, card, bench.views, device),
                                     bench.repeats), len(baseline) * bench.views, scenario="pytorchvideo_loop")
    for row, per_video in ((ours, bench.views * bench.crops), (loop, bench.views)):
        row["videos_per_s"] = row["stats"]["clips_per_s"] / per_video
    ours["clips_vs_model_only"] = round(ours["stats"]["clips_per_s"] / model_only["stats"]["clips_per_s"], 3)
    ours["speedup_vs_pytorchvideo"] = round(ours["videos_per_s"] / loop["videos_per_s"], 2)
    return {"config": asdict(bench), "environment": environment(device), "rows": [model_only, ours, loop]}


def _infer_all(options: InferConfig) -> None:
    summary = infer(options)
    if summary.failed:
        raise RuntimeError(f"videoml infer failed on {summary.failed} benchmark videos")


def table(results: dict) -> str:
    lines = ["| scenario | videos/s | clips/s | vs PyTorchVideo loop | vs model only |", "|---|---|---|---|---|"]
    for r in results["rows"]:
        videos = f"{r['videos_per_s']:.4g}" if "videos_per_s" in r else ""
        ptv = f"{r['speedup_vs_pytorchvideo']:.1f}x" if "speedup_vs_pytorchvideo" in r else ""
        model = f"{r['clips_vs_model_only']:.2f}" if "clips_vs_model_only" in r else ""
        lines.append(f"| {r['scenario']} | {videos} | {r['stats']['clips_per_s']:.4g} | {ptv} | {model} |")
    return "\n".join(lines)


def write(results: dict, out: str | os.PathLike) -> Path:
    return write_results(results, out, "infer", table(results))
