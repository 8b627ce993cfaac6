"""The limits each benchmark row is held against: the compute ceiling (model FLOPs per clip against the device's
measured peak at the cell's precision, and the theoretical figure beside it) and the decode ceiling (FFmpeg's own
decoding speed on the same files).

FLOPs are counted once per model, on the PyTorch side (``torch.utils.flop_counter``: convolutions and matrix
products, a multiply-add counted as 2 FLOPs; the Keras twins compute the same layers, so their cells use the same
count). A train step is counted as 3x the forward (forward, and a backward of about twice its cost), the usual
estimate.

The measured peak of a precision is the fastest of a few kernels at shapes they run well at (square matrix
products, and the 3-D convolutions the ResNets spend their time in, channels-last), median of timed rounds, at the
benchmark's thread count: what the device's best kernels reach. The theoretical peak (CPU) is the vector units'
FLOPs per cycle and core (from the instruction sets in ``/proc/cpuinfo``) x cores x clock; a virtual machine often
hides the clock, and then the clock the measured peak implies is given instead.
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


# The kernels a peak is measured with, per device type: ("matmul", n) is an n x n by n x n product; ("conv3d", (C, T,
# S, k)) a C -> C channel 3-D convolution of a batch of 2 (C, T, S, S) inputs with a (k, 3, 3) kernel, channels-last:
# the ResNets' 1x3x3 and 3x3x3 convolutions at the sizes of their middle stages.
PEAK_KERNELS = {
    "cpu": (("matmul", 1024), ("matmul", 2048), ("conv3d", (256, 8, 28, 1)), ("conv3d", (64, 8, 56, 3))),
    "cuda": (("matmul", 4096), ("matmul", 8192), ("conv3d", (256, 8, 28, 1)), ("conv3d", (128, 16, 56, 3))),
}
PEAK_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def peak_kernel(kind: str, shape, dtype, device: torch.device):
    """(the kernel as a no-argument call, its FLOPs)."""
    if kind == "matmul":
        a, b = (torch.randn(shape, shape, device=device, dtype=dtype) for _ in range(2))
        return (lambda: torch.mm(a, b)), 2 * shape**3
    channels, frames, size, k = shape
    x = torch.randn(2, channels, frames, size, size, device=device, dtype=dtype)
    conv = torch.nn.Conv3d(channels, channels, (k, 3, 3), padding=(k // 2, 1, 1), bias=False)
    conv = conv.to(device, dtype, memory_format=torch.channels_last_3d).eval()
    x = x.contiguous(memory_format=torch.channels_last_3d)

    def run():
        with torch.no_grad():
            conv(x)

    return run, 2 * x.numel() * channels * k * 9


def measured_peak(device: torch.device, precision: str = "fp32", timing: Timing | None = None) -> dict:
    """The fastest of :data:`PEAK_KERNELS` at ``precision`` (a short name: fp32, bf16, fp16), FLOP/s: ``{"flops_per_s",
    "kernel", "kernels": {kernel: FLOP/s}, "threads", "spread"}``."""
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    timing = timing or Timing(warmup=2, steps=3, repeats=5, max_spread=None)
    rates, spreads = {}, {}
    for kind, shape in PEAK_KERNELS["cuda" if device.type == "cuda" else "cpu"]:
        call, flops = peak_kernel(kind, shape, PEAK_DTYPES[precision], device)
        stats = summarize(time_rounds(call, timing, sync), 1)
        name = f"{kind} {shape}x{shape}x{shape}" if kind == "matmul" else f"{kind} {shape[0]}ch {shape[3]}x3x3"
        rates[name], spreads[name] = flops / stats["median_s"], stats["spread"]
    top = max(rates, key=rates.get)
    return {"flops_per_s": rates[top], "kernel": top, "kernels": rates, "precision": precision,
            "threads": torch.get_num_threads(), "spread": spreads[top]}


# FLOPs per cycle and core of a CPU's widest vector (or matrix) unit for a precision, by the instruction set that
# provides it (first found in /proc/cpuinfo wins): FMA units x lanes x 2 (a multiply-add is 2 FLOPs).
CPU_FLOPS_PER_CYCLE = {
    "fp32": (("avx512f", 64, "AVX-512: 2 FMA units x 16 float32 lanes x 2"),
             ("avx2", 32, "AVX2: 2 FMA units x 8 float32 lanes x 2")),
    "bf16": (("amx_bf16", 1024, "AMX: 1024 bfloat16 FLOPs per cycle (Intel's figure for the tile unit)"),
             ("avx512_bf16", 128, "AVX512-BF16: 2 units x 32 bfloat16 pairs x 2")),
}


def theoretical_peak(precision: str = "fp32", threads: int | None = None, cpuinfo: str | None = None) -> dict | None:
    """The CPU's vector units' figure for ``precision`` at ``threads`` cores: ``{"flops_per_cycle_per_core", "cores",
    "basis", "clock_ghz", "flops_per_s"}`` (the last two None where the clock is not exposed); None without a known
    unit for it."""
    try:
        text = cpuinfo if cpuinfo is not None else open("/proc/cpuinfo").read()
    except OSError:
        return None
    flags = set(re.search(r"^flags\s*:(.*)$", text, re.M).group(1).split()) if "flags" in text else set()
    unit = next(((n, basis) for flag, n, basis in CPU_FLOPS_PER_CYCLE.get(precision, ()) if flag in flags), None)
    if unit is None:
        return None
    clocks = re.findall(r"^cpu MHz\s*:\s*([0-9.]+)", text, re.M)
    clock = max(float(c) for c in clocks) / 1000 if clocks else None
    cores = threads or torch.get_num_threads()
    return {"flops_per_cycle_per_core": unit[0], "cores": cores, "basis": unit[1], "clock_ghz": clock,
            "flops_per_s": unit[0] * cores * clock * 1e9 if clock else None}


def compute_ceilings(device: torch.device, precisions: list[str], models: list[str], classes: int) -> dict:
    """What a suite's model cells are held against: per precision the measured peak (and on a CPU the theoretical
    one), and each model's forward FLOPs per clip."""
    peaks = {p: measured_peak(device, p) for p in precisions}
    if device.type == "cpu":
        for precision, peak in peaks.items():
            peak["theoretical"] = theoretical_peak(precision)
    return {"peaks": peaks, "flops_per_clip": {m: flops_per_clip(m, classes) for m in models}}


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
