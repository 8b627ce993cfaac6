"""The limits each benchmark row is held against: the compute ceiling (model FLOPs per clip against the device's
measured matrix-multiply rate) and the decode ceiling (FFmpeg's own decoding speed on the same files).

FLOPs are counted once per model, on the PyTorch side (``torch.utils.flop_counter``: convolutions and matrix
products, 2 per multiply-add; the Keras twins compute the same layers). A train step is counted as 3x the forward
(forward, and a backward of about twice its cost), the usual estimate. The matmul peak is the median rate of
square float32 matrix products on the device, at the benchmark's thread count: a practical peak (what a large,
well-shaped product reaches), not the data-sheet number.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import torch

from videoml.bench.model import random_clips
from videoml.bench.measure import Timing, summarize, time_rounds
from videoml.data.decoding import load_index
from videoml.models.registry import build_model, model_input

TRAIN_FLOPS_FACTOR = 3


def flops_per_clip(name: str, classes: int = 400) -> int:
    """Forward FLOPs of one clip at the model's canonical input."""
    from torch.utils.flop_counter import FlopCounterMode

    model = build_model(name, classes).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(random_clips(model_input(name), 1))
    return int(counter.get_total_flops())


def matmul_peak(device: torch.device, size: int | None = None, timing: Timing | None = None) -> dict:
    """The device's float32 matrix-multiply rate, FLOP/s (median of timed rounds)."""
    size = size or (8192 if device.type == "cuda" else 2048)
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    rounds = time_rounds(lambda: torch.mm(a, b), timing or Timing(warmup=2, steps=3, repeats=5, max_spread=None),
                         sync)
    stats = summarize(rounds, 1)
    return {"flops_per_s": 2 * size**3 / stats["median_s"], "size": size, "dtype": "float32",
            "threads": torch.get_num_threads(), "spread": stats["spread"]}


def ffmpeg_frame_seconds(path, repeats: int = 3) -> float:
    """FFmpeg's own time per frame to decode the whole file, one thread, into the null muxer (median of repeats).

    Whole-file decoding amortises FFmpeg's start-up (probing, filter graph, muxer), which would otherwise dominate a
    clip's few dozen frames; per frame, it is the speed limit of the decoder on this file.
    """
    cmd = ["ffmpeg", "-hide_banner", "-nostdin", "-benchmark", "-threads", "1", "-i", str(path), "-an",
           "-f", "null", "-"]
    times = []
    for _ in range(repeats):
        result = subprocess.run(cmd, capture_output=True, text=True, check=True)
        frames = int(re.findall(r"frame=\s*(\d+)", result.stderr)[-1])
        times.append(float(re.search(r"rtime=([0-9.]+)s", result.stderr).group(1)) / frames)
    return float(np.median(times))


def decode_ceiling(clips: list[tuple[object, np.ndarray]], repeats: int = 3) -> dict | None:
    """What FFmpeg's decoder allows for reading ``clips`` ((path, frame indices) pairs): per clip, the frames from
    the key frame before it to its last (what any decoder must decode to return it), each at FFmpeg's time per
    frame on that file. None without an ``ffmpeg`` command."""
    if not shutil.which("ffmpeg"):
        return None
    per_frame = {p: ffmpeg_frame_seconds(p, repeats) for p in dict.fromkeys(p for p, _ in clips)}
    frames = np.array([c[-1] - load_index(p).key_before[c[0]] + 1 for p, c in clips])
    seconds = np.array([per_frame[p] for p, _ in clips]) * frames
    return {"clips_per_s": len(clips) / float(seconds.sum()), "frames_decoded_per_clip": float(frames.mean()),
            "ffmpeg_ms_per_frame": 1000 * float(np.median(list(per_frame.values())))}
