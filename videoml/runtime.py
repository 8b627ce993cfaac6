"""Where and how a PyTorch model runs: device, precision (autocast), memory format, synchronisation.

One home for these choices, used by training, inference, export and the benchmarks alike.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from videoml.errors import VideomlError
from videoml.vocab import InferPrecision, MemoryFormat, Precision, check

MEMORY_FORMATS = {"channels_last_3d": torch.channels_last_3d, "contiguous": torch.contiguous_format}
AUTOCAST_DTYPES = {"32-true": None, "bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}


def parse_device(text: str | torch.device) -> torch.device:
    """A device name (cpu, cuda, cuda:1, ...) that exists here; a clear error otherwise."""
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise VideomlError(f"unknown device {str(text)!r} (e.g. cpu, cuda, cuda:1)") from None
    if device.type == "cuda" and (not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count()):
        raise VideomlError(f"device {str(text)!r}: no such CUDA device here ({torch.cuda.device_count()} visible)")
    return device


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on the CPU): what every timing brackets its rounds with."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def autocast(device: torch.device, precision: Precision = "32-true"):
    """The context that runs a model at ``precision`` on ``device`` (32-true: none)."""
    dtype = AUTOCAST_DTYPES[check(precision, Precision, "precision")]
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


def native_bf16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (AVX512-BF16 or AMX tiles), as torch's own CPU kernels ask."""
    units = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # private to torch.cpu: absent means no
    return any(getattr(torch.cpu, name, lambda: False)() for name in units)


def inference_precision(choice: InferPrecision, device: torch.device, exported: bool = False) -> Precision:
    """The precision a model runs at for ``choice``; "auto": bfloat16 autocast on a CPU that computes bfloat16 in
    hardware (:func:`native_bf16`), where the four Kinetics models' folded graphs ran at 1.14-2.82x their float32
    clips/s (``configs/bench/cpu_full_infer.yaml``, docs/benchmarks.md) with the same top-1 on the demo's test
    split; float32 elsewhere: on GPUs (where bfloat16 won for some models and lost for others), on CPUs without
    bfloat16 units (emulated, it is slower), and for ``exported`` files (they run as they were exported)."""
    if check(choice, InferPrecision, "precision") != "auto":
        return choice
    return "bf16-mixed" if device.type == "cpu" and not exported and native_bf16() else "32-true"


def has_depthwise_conv3d(model: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv3d) and m.groups > 1 and m.groups == m.in_channels for m in model.modules())


def memory_format_for(choice: MemoryFormat, model: nn.Module | None, device_type: str) -> torch.memory_format:
    """The layout for ``choice`` ("auto", "channels_last_3d" or "contiguous") on a device type.

    "auto" follows ``videoml bench model`` (docs/benchmarks.md): channels_last_3d on the CPU (oneDNN's 3-D and
    depthwise convolutions are much faster in it) and on CUDA for models without depthwise Conv3d (the ResNet family:
    1.3-1.7x the training clips/s of contiguous on an H100); contiguous on CUDA for models with depthwise Conv3d
    (X3D: channels_last_3d ran at 0.29x the forward and 0.55x the training speed). Without a model to inspect (an
    exported one), contiguous.
    """
    if check(choice, MemoryFormat, "memory format") != "auto":
        return MEMORY_FORMATS[choice]
    if model is None or (device_type == "cuda" and has_depthwise_conv3d(model)):
        return torch.contiguous_format
    return torch.channels_last_3d
