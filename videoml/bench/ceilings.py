"""The limits each benchmark row is held against: the compute ceiling (model FLOPs per clip against the device's
measured matrix-multiply rate) and the decode ceiling (FFmpeg's own decoding speed, :mod:`videoml.bench.decode`).

FLOPs are counted once per model, on the PyTorch side (``torch.utils.flop_counter``: convolutions and matrix
products, 2 per multiply-add; the Keras twins compute the same layers). A train step is counted as 3x the forward
(forward, and a backward of about twice its cost), the usual estimate. The matmul peak is the median rate of
square float32 matrix products on the device, at the benchmark's thread count: a practical peak (what a large,
well-shaped product reaches), not the data-sheet number.
"""

from __future__ import annotations

import torch

from videoml.bench.measure import Timing, summarize, time_rounds
from videoml.data.transforms import pack_pathways
from videoml.models.registry import build_model, model_input

TRAIN_FLOPS_FACTOR = 3


def flops_per_clip(name: str, classes: int = 400) -> int:
    """Forward FLOPs of one clip at the model's canonical input."""
    from torch.utils.flop_counter import FlopCounterMode

    spec = model_input(name)
    model = build_model(name, classes).eval()
    clip = pack_pathways(torch.zeros(1, 3, spec.frames, spec.crop, spec.crop), spec.slowfast_alpha)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(clip)
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
