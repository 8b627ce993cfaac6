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
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from videoml.bench.common import make_videos, write as write_results
from videoml.bench.decode import DecodeBench
from videoml.data.synth import SynthConfig
from videoml.data.transforms import pack_pathways
from videoml.environment import environment
from videoml.infer.predictor import Predictor, load_predictor
from videoml.infer.run import InferConfig, infer
from videoml.models.weights import ModelCard, save_checkpoint
from videoml.models.registry import build_model, model_input
from videoml.runtime import parse_device
from videoml.vocab import Precision


@dataclass(frozen=True)
class InferBench:
    data: str = "data/bench"
    out: str = "runs/bench/infer"
    model: str = "x3d_xs"
    views: int = 5
    crops: int = 1
    videos: int = 48
    """10-second videos, made once"""
    baseline_videos: int = 8
    """the tutorial loop is slow: timed on the first few videos"""
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


def _model_only(predictor: Predictor, card: ModelCard, batch: int, repeats: int) -> list[float]:
    """Seconds per batch of ``batch`` clips, model alone (warm-up excluded), per repeat."""
    spec = card.input
    clips = torch.randint(0, 256, (batch, 3, spec.frames, spec.crop, spec.crop), dtype=torch.uint8)
    video = pack_pathways(clips, spec.slowfast_alpha)
    for _ in range(3):
        predictor(video)
    times = []
    for _ in range(repeats * 5):
        start = time.perf_counter()
        predictor(video)  # returns logits on the CPU: synchronised
        times.append(time.perf_counter() - start)
    return times


def run(bench: InferBench) -> dict:
    import videoml  # noqa: F401  (compat before pytorchvideo)

    classes = SynthConfig().classes
    per_class = -(-bench.videos // len(classes))
    config = DecodeBench().videos(10, classes, per_class)  # 10 s, 320x240, 30 fps, GOP 60, B-frames
    paths = make_videos(Path(bench.data) / f"infer-{per_class * len(classes)}x10s", config)[: bench.videos]
    device = parse_device(bench.device)
    labels = tuple(f"class_{i}" for i in range(400))  # a Kinetics-sized head
    card = ModelCard(bench.model, labels, model_input(bench.model), views=bench.views, crops=bench.crops)
    torch.manual_seed(bench.seed)
    model = build_model(bench.model, len(labels)).eval()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = Path(tmp) / "model.ckpt"
        save_checkpoint(model, card, checkpoint)
        predictor = load_predictor(checkpoint, device, bench.precision)

        per_batch = _model_only(predictor, card, bench.batch_size, bench.repeats)
        model_rate = bench.batch_size / float(np.median(per_batch))
        rows.append({"scenario": "model_only", "clips_per_s": round(model_rate, 2),
                     "ms_per_clip_iqr": [round(1000 * q / bench.batch_size, 3) for q in np.percentile(per_batch, [25, 75])]})

        clips = len(paths) * bench.views * bench.crops
        infer_times = []
        for k in range(bench.repeats):
            out = Path(tmp) / f"run{k}.jsonl"
            start = time.perf_counter()
            summary = infer(InferConfig(model=str(checkpoint), inputs=[str(p) for p in paths], output=str(out),
                                        batch_size=bench.batch_size, num_workers=bench.num_workers,
                                        devices=(bench.device,), precision=bench.precision, progress=False))
            infer_times.append(time.perf_counter() - start)
            if summary.failed:
                raise RuntimeError(f"videoml infer failed on {summary.failed} benchmark videos")
        seconds = float(np.median(infer_times))
        rows.append({"scenario": "videoml_infer", "videos_per_s": round(len(paths) / seconds, 3),
                     "clips_per_s": round(clips / seconds, 2), "seconds": [round(t, 3) for t in infer_times],
                     "clips_vs_model_only": round(clips / seconds / model_rate, 3)})

        baseline = paths[: bench.baseline_videos]
        loop_model = model.to(device)
        loop_times = []
        for _ in range(bench.repeats):
            start = time.perf_counter()
            _tutorial_loop(baseline, loop_model, card, bench.views, device)
            loop_times.append(time.perf_counter() - start)
        loop_rate = len(baseline) / float(np.median(loop_times))
        rows.append({"scenario": "pytorchvideo_loop", "videos_per_s": round(loop_rate, 3),
                     "clips_per_s": round(loop_rate * bench.views, 2), "seconds": [round(t, 3) for t in loop_times]})
        rows[1]["speedup_vs_pytorchvideo"] = round(rows[1]["videos_per_s"] / loop_rate, 2)
    return {"config": asdict(bench), "environment": environment(device), "rows": rows}


def table(results: dict) -> str:
    lines = ["| scenario | videos/s | clips/s | vs PyTorchVideo loop | vs model only |", "|---|---|---|---|---|"]
    for r in results["rows"]:
        videos = f"{r['videos_per_s']:g}" if "videos_per_s" in r else ""
        ptv = f"{r['speedup_vs_pytorchvideo']:.1f}x" if "speedup_vs_pytorchvideo" in r else ""
        model = f"{r['clips_vs_model_only']:.2f}" if "clips_vs_model_only" in r else ""
        lines.append(f"| {r['scenario']} | {videos} | {r['clips_per_s']:g} | {ptv} | {model} |")
    return "\n".join(lines)


def write(results: dict, out: str | os.PathLike) -> Path:
    return write_results(results, out, "infer", table(results))
