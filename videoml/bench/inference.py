"""The infer cells of a suite (``videoml bench infer``): ``videoml infer`` against PyTorchVideo's inference tutorial
loop and against the model alone, on the same videos (the ``web`` set), model (random weights: speed does not depend
on them), views and crops (``stage``):

- ``pytorchvideo_loop``: the tutorial's way, per video ``EncodedVideo.from_path``, then per view ``get_clip(start,
  end)``, its transforms (``UniformTemporalSubsample``, /255, ``NormalizeVideo``, ``ShortSideScale``,
  ``CenterCropVideo``) and one model call per clip, in the main process, on ``baseline_videos`` of the videos;
- ``videoml_infer``: :func:`videoml.infer.run.infer` with ``workers`` decoding processes, clips of several videos
  batched; one call is the whole run;
- ``model_only``: the loaded model on a batch of uint8 clips already in memory (normalised on the device, as
  ``infer`` does): the ceiling ``infer`` reaches when decoding is entirely hidden behind compute;
- ``model_only_eager``: the same without the fast inference graph (``--no-optimize``, BatchNorm not folded);
- ``videoml_infer_ray``: ``videoml_infer`` with ``--engine ray`` on a local Ray instance (every CPU), started before
  the timed runs as a cluster outlives the runs it serves (each run still starts its model actors).

A record counts clips; ``clips_per_unit`` (views x crops) turns them into videos.
"""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
from pathlib import Path

import torch

from videoml.bench.measure import Timing, time_rounds
from videoml.bench.model import random_clips
from videoml.bench.suite import Plan
from videoml.data.transforms import pack_pathways
from videoml.infer.predictor import load_predictor
from videoml.infer.ray_engine import connected
from videoml.infer.options import InferConfig
from videoml.infer.run import infer
from videoml.models.registry import build_model, model_input
from videoml.models.weights import ModelCard, save_checkpoint
from videoml.runtime import parse_device


def _tutorial_loop(paths: list[Path], model: torch.nn.Module, card: ModelCard, device: torch.device) -> None:
    """PyTorchVideo's inference tutorial, one video at a time, one model call per clip."""
    from pytorchvideo.data.encoded_video import EncodedVideo
    from pytorchvideo.transforms import ApplyTransformToKey, ShortSideScale, UniformTemporalSubsample
    from torchvision.transforms import Compose, Lambda
    from torchvision.transforms._transforms_video import CenterCropVideo, NormalizeVideo

    spec = card.input
    transform = ApplyTransformToKey(key="video", transform=Compose([
        UniformTemporalSubsample(spec.frames), Lambda(lambda x: x / 255.0), NormalizeVideo(spec.mean, spec.std),
        ShortSideScale(size=spec.eval_scale), CenterCropVideo(spec.crop_side(train=False))]))
    clip_seconds = spec.frames * spec.stride / 30.0  # the benchmark videos' 30 fps
    for path in paths:
        video = EncodedVideo.from_path(str(path), decode_audio=False, decoder="pyav")
        last = max(float(video.duration) - clip_seconds, 0.0)
        scores = []
        for i in range(card.views):
            start = last * i / max(card.views - 1, 1)
            clip = transform(video.get_clip(start, start + clip_seconds))["video"]
            batch = pack_pathways(clip[None], spec.slowfast_alpha)  # the tutorial's PackPathway for SlowFast
            batch = [b.to(device) for b in batch] if isinstance(batch, list) else batch.to(device)
            with torch.inference_mode():
                scores.append(model(batch).softmax(-1))
        video.close()
        torch.stack(scores).mean(0).cpu()


def _infer_all(options: InferConfig) -> None:
    summary = infer(options)
    if summary.failed:
        raise RuntimeError(f"videoml infer failed on {summary.failed} benchmark videos")


def infer_cell(plan: Plan, cell, timing: Timing, emit) -> None:
    settings, device = plan.inference, parse_device(plan.device)
    paths = [Path(p) for p in plan.videos["web"]["original"]]
    card = ModelCard(cell.model, tuple(f"class_{i}" for i in range(plan.classes)), model_input(cell.model),
                     views=settings.views, crops=settings.crops)
    torch.manual_seed(plan.seed)
    model = build_model(cell.model, plan.classes).eval()
    whole_runs = dataclasses.replace(timing, warmup=0, steps=1, min_round_s=0.0)
    per_video = card.views * card.crops
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = Path(tmp) / "model.ckpt"
        save_checkpoint(model, card, checkpoint)
        if cell.stage in ("model_only", "model_only_eager"):
            optimize = False if cell.stage == "model_only_eager" else None  # None: as videoml infer runs it
            predictor = load_predictor(checkpoint, device, settings.precision, optimize=optimize)
            batch = random_clips(card.input, cell.batch_size, dtype=torch.uint8)
            emit(cell, time_rounds(lambda: predictor(batch), timing), cell.batch_size)
        elif cell.stage in ("videoml_infer", "videoml_infer_ray"):
            ray = cell.stage == "videoml_infer_ray"
            options = InferConfig(model=str(checkpoint), inputs=[str(p) for p in paths], out=f"{tmp}/out",
                                  batch_size=cell.batch_size, num_workers=cell.workers,
                                  devices=("cpu",) if ray else (plan.device,), precision=settings.precision,
                                  progress=False, overwrite=True, engine="ray" if ray else "local")
            with connected(None) if ray else contextlib.nullcontext():  # a cluster outlives its runs: start untimed
                emit(cell, time_rounds(lambda: _infer_all(options), whole_runs), len(paths) * per_video,
                     clips_per_unit=per_video)
        else:
            baseline, model = paths[: settings.baseline_videos], model.to(device)
            emit(cell, time_rounds(lambda: _tutorial_loop(baseline, model, card, device), whole_runs),
                 len(baseline) * card.views, clips_per_unit=card.views)
