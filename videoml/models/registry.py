"""Model registry: a name gives a PyTorchVideo architecture and its canonical input, declared once.

The canonical inputs are those of the PyTorchVideo / PySlowFast Kinetics recipes: T frames ``stride`` frames apart
(at the source's frame rate), a square ``crop`` after scaling the short side (randomly within ``train_scale`` for
training, to ``eval_scale`` for evaluation), and the normalisation the weights were trained with. The data
configuration reads them from here; nothing else repeats them.

Every model returns logits: PyTorchVideo's builders put a Softmax in the head by default (in training too), which
would feed probabilities to the loss, so it is turned off here.

Tiny variants (``*_tiny``) are real X3D / ResNet networks, narrow and at a low resolution, fast enough to train on a
CPU.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import nn

import videoml  # noqa: F401  (compat alias before pytorchvideo)
from videoml.errors import VideomlError, first_line

# Layouts a model can run in; "auto" picks one by device and architecture (:func:`memory_format_for`).
MEMORY_FORMATS = {"channels_last_3d": torch.channels_last_3d, "contiguous": torch.contiguous_format}
MEMORY_FORMAT_CHOICES = ("auto", *MEMORY_FORMATS)

KINETICS_MEAN = (0.45, 0.45, 0.45)
KINETICS_STD = (0.225, 0.225, 0.225)


@dataclass(frozen=True)
class InputSpec:
    """What a model eats: clip length and spacing, spatial size, normalisation, pathways."""

    frames: int  # T (for SlowFast: of the fast pathway)
    stride: int  # τ: source frames between clip frames
    crop: int  # square crop side, pixels
    train_scale: tuple[int, int]  # short side before the random crop, drawn uniformly from this range
    eval_scale: int  # short side before the evaluation crops
    mean: tuple[float, float, float] = KINETICS_MEAN
    std: tuple[float, float, float] = KINETICS_STD
    slowfast_alpha: int | None = None  # two pathways: the slow one takes every alpha-th frame of the fast one

    def replace(self, **changes) -> "InputSpec":
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Callable[..., nn.Module]  # builder(num_classes) -> module returning logits
    input: InputSpec
    description: str
    defaults: dict = field(default_factory=dict)


MODELS: dict[str, ModelEntry] = {}


def _hub(function: str, classes_arg: str = "model_num_class", softmax_head: bool = True) -> Callable[..., nn.Module]:
    """A PyTorchVideo hub builder, untrained, with ``num_classes`` outputs and no Softmax in its head."""

    def build(num_classes: int, **overrides) -> nn.Module:
        import pytorchvideo.models.hub as hub

        kwargs = {classes_arg: num_classes, **({"head_activation": None} if softmax_head else {}), **overrides}
        return getattr(hub, function)(pretrained=False, **kwargs)

    build.__name__ = function
    return build


def _efficient_x3d(expansion: str) -> Callable[..., nn.Module]:
    def build(num_classes: int, **overrides) -> nn.Module:
        from pytorchvideo.models.accelerator.mobile_cpu.efficient_x3d import EfficientX3d

        return EfficientX3d(num_classes=num_classes, expansion=expansion, head_act="identity", **overrides)

    return build


def _x3d_tiny(num_classes: int, **overrides) -> nn.Module:
    from pytorchvideo.models.x3d import create_x3d

    kwargs = dict(model_num_class=num_classes, width_factor=1.0, depth_factor=1.0, bottleneck_factor=2.25,
                  head_dim_out=256, head_activation=None, dropout_rate=0.2)
    return create_x3d(**{**kwargs, **overrides})


def _narrow(module: str, function: str, **fixed) -> Callable[..., nn.Module]:
    """A ResNet-family builder of PyTorchVideo at 1/8 of its width (8 stem channels), for CPU tests and demos."""

    def build(num_classes: int, **overrides) -> nn.Module:
        import importlib

        kwargs = dict(model_num_class=num_classes, stem_dim_out=8, head_activation=None, dropout_rate=0.2, **fixed)
        return getattr(importlib.import_module(module), function)(**{**kwargs, **overrides})

    return build


def _any_input_size(model: nn.Module) -> nn.Module:
    """X3D's and the ResNets' heads average with a fixed kernel sized for the canonical input, so another clip length
    or crop fails (or pools only part of the clip). A global average is the same at the canonical input (the kernel
    covers the whole feature map there) and fits every input. (SlowFast's per-pathway head pools are left as they
    are.)"""
    from pytorchvideo.models.head import ResNetBasicHead
    from pytorchvideo.models.x3d import ProjectedPool

    for module in model.modules():
        if isinstance(module, (ProjectedPool, ResNetBasicHead)) and isinstance(module.pool, nn.AvgPool3d):
            module.pool = nn.AdaptiveAvgPool3d(1)
    return model


def _native_swish(model: nn.Module) -> nn.Module:
    """PyTorchVideo's Swish is a custom autograd Function (to save activation memory), which TorchScript cannot save
    and other exporters cannot see into; ``nn.SiLU`` computes the same x * sigmoid(x) with a native kernel."""
    from pytorchvideo.layers.swish import Swish

    for parent in list(model.modules()):
        for name, child in parent.named_children():
            if isinstance(child, Swish):
                setattr(parent, name, nn.SiLU())
    return model


def _python_ints(model: nn.Module) -> nn.Module:
    """PyTorchVideo's ResNet builders give shortcut convolutions numpy int64 strides; ``torch.compile`` traces those
    as tensors, and its guards on them fail ("Guard failed on the same frame it was created"), so compiled ResNets
    fall back to eager code. Plain ints are the same convolution."""
    for module in model.modules():
        for attribute in ("kernel_size", "stride", "padding", "dilation"):
            value = getattr(module, attribute, None)
            if isinstance(value, tuple) and any(isinstance(v, np.integer) for v in value):
                setattr(module, attribute, tuple(int(v) for v in value))
    return model


def _keep_input_lists(model: nn.Module) -> nn.Module:
    """PyTorchVideo's multi-pathway blocks (SlowFast) write their outputs into the input list, so a caller's
    ``[slow, fast]`` would hold feature maps after one call; the model gets a copy of the list instead."""
    model.register_forward_pre_hook(lambda _, args: (list(args[0]), *args[1:]) if args and isinstance(args[0], list)
                                    else None)
    return model


def parse_device(text: str | torch.device) -> torch.device:
    """A device name (cpu, cuda, cuda:1, ...) that exists here; a clear error otherwise."""
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise VideomlError(f"unknown device {str(text)!r} (e.g. cpu, cuda, cuda:1)") from None
    if device.type == "cuda" and (not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count()):
        raise VideomlError(f"device {str(text)!r}: no such CUDA device here ({torch.cuda.device_count()} visible)")
    return device


def has_depthwise_conv3d(model: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv3d) and m.groups > 1 and m.groups == m.in_channels for m in model.modules())


def memory_format_for(choice: str, model: nn.Module | None, device_type: str) -> torch.memory_format:
    """The layout for ``choice`` ("auto", "channels_last_3d" or "contiguous") on a device type.

    "auto" follows ``videoml bench model`` (docs/benchmarks.md): channels_last_3d on the CPU (oneDNN's 3-D and
    depthwise convolutions are much faster in it) and on CUDA for models without depthwise Conv3d (the ResNet family:
    1.3-1.7x the training clips/s of contiguous on an H100); contiguous on CUDA for models with depthwise Conv3d
    (X3D: channels_last_3d ran at 0.29x the forward and 0.55x the training speed). Without a model to inspect (an
    exported one), contiguous.
    """
    if choice != "auto":
        if choice not in MEMORY_FORMATS:
            raise VideomlError(f"memory format must be one of {', '.join(MEMORY_FORMAT_CHOICES)}, got {choice!r}")
        return MEMORY_FORMATS[choice]
    if model is None or (device_type == "cuda" and has_depthwise_conv3d(model)):
        return torch.contiguous_format
    return torch.channels_last_3d


def register(name: str, builder, input: InputSpec, description: str) -> None:
    MODELS[name] = ModelEntry(name, builder, input, description)


_224 = dict(crop=224, train_scale=(256, 320), eval_scale=256)
register("x3d_xs", _hub("x3d_xs"), InputSpec(4, 12, 160, (182, 228), 182), "X3D-XS, 4x12, 160px")
register("x3d_s", _hub("x3d_s"), InputSpec(13, 6, 160, (182, 228), 182), "X3D-S, 13x6, 160px")
register("x3d_m", _hub("x3d_m"), InputSpec(16, 5, 224, (256, 320), 256), "X3D-M, 16x5, 224px")
register("x3d_l", _hub("x3d_l"), InputSpec(16, 5, 312, (356, 446), 356), "X3D-L, 16x5, 312px")
register("slow_r50", _hub("slow_r50"), InputSpec(8, 8, **_224), "Slow-only ResNet-50, 8x8")
register("c2d_r50", _hub("c2d_r50"), InputSpec(8, 8, **_224), "C2D ResNet-50, 8x8")
register("i3d_r50", _hub("i3d_r50"), InputSpec(8, 8, **_224), "I3D ResNet-50, 8x8")
register("slowfast_r50", _hub("slowfast_r50"), InputSpec(32, 2, slowfast_alpha=4, **_224),
         "SlowFast ResNet-50, 8x8 (fast pathway 32x2, alpha 4)")
register("slowfast_r101", _hub("slowfast_r101"), InputSpec(32, 2, slowfast_alpha=4, **_224),
         "SlowFast ResNet-101, 8x8 (fast pathway 32x2, alpha 4)")
register("r2plus1d_r50", _hub("r2plus1d_r50"), InputSpec(16, 4, **_224), "R(2+1)D ResNet-50, 16x4")
register("csn_r101", _hub("csn_r101"), InputSpec(32, 2, **_224), "ir-CSN ResNet-101, 32x2")
register("mvit_base_16x4", _hub("mvit_base_16x4", "head_num_classes", softmax_head=False), InputSpec(16, 4, **_224),
         "MViT-B, 16x4")
register("efficient_x3d_xs", _efficient_x3d("XS"), InputSpec(4, 12, 160, (182, 228), 182),
         "EfficientX3D-XS (mobile CPU), 4x12, 160px")
register("efficient_x3d_s", _efficient_x3d("S"), InputSpec(13, 6, 160, (182, 228), 182),
         "EfficientX3D-S (mobile CPU), 13x6, 160px")
# Small enough to train on a laptop CPU in minutes; the frame model is the single-frame baseline.
register("x3d_tiny", _x3d_tiny, InputSpec(4, 8, 64, (72, 88), 72), "X3D (S width, 256-d head), 4x8, 64px")
register("slow_tiny", _narrow("pytorchvideo.models.resnet", "create_resnet", stem_conv_kernel_size=(1, 7, 7)), InputSpec(4, 8, 64, (72, 88), 72),
         "Slow-only ResNet-50 at 1/8 width, 4x8, 64px")
register("r2plus1d_tiny", _narrow("pytorchvideo.models.r2plus1d", "create_r2plus1d"), InputSpec(8, 4, 64, (72, 88), 72),
         "R(2+1)D ResNet-50 at 1/8 width, 8x4, 64px")
register("x3d_tiny_frame", _x3d_tiny, InputSpec(1, 1, 64, (72, 88), 72),
         "x3d_tiny on one frame: the frame-level baseline")


def model_entry(name: str) -> ModelEntry:
    if name not in MODELS:
        raise VideomlError(f"unknown model {name!r} (known: {', '.join(MODELS)})")
    return MODELS[name]


def model_input(name: str) -> InputSpec:
    return model_entry(name).input


def build_model(name: str, num_classes: int, **overrides) -> nn.Module:
    """A freshly initialised model returning logits of ``num_classes`` classes."""
    if num_classes < 1:
        raise VideomlError(f"num_classes must be >= 1, got {num_classes}")
    model = model_entry(name).builder(num_classes, **overrides)
    return _keep_input_lists(_python_ints(_native_swish(_any_input_size(model))))


def classifier_name(model: nn.Module) -> str:
    """The qualified name of the model's final Linear layer: the head that depends on the class count."""
    linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise VideomlError(f"{type(model).__name__} has no Linear classifier")
    return linears[-1]


def read_file(path) -> object:
    """A checkpoint file's contents, read with ``torch.load(weights_only=True)``; errors name the file."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise VideomlError(f"{path}: no such checkpoint file") from None
    except Exception as e:  # torch raises many types for a file that is not a checkpoint
        raise VideomlError(f"{path}: not a loadable checkpoint ({type(e).__name__}: {first_line(e)})") from None


def load_weights(model: nn.Module, path, strict_head: bool = False) -> list[str]:
    """Load a checkpoint into ``model``; returns the names of parameters left as initialised (a new head).

    Reads PyTorchVideo model-zoo files (``{"model_state": ...}``), Lightning checkpoints (``{"state_dict": ...}``,
    keys prefixed ``model.``) and plain state dicts, with ``torch.load(weights_only=True)``. A classifier of another
    class count is skipped (kept as initialised) unless ``strict_head``; any other mismatch is an error naming the
    tensors.
    """
    state = read_file(path)
    for key in ("model_state", "state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict):
        raise VideomlError(f"{path}: holds no state dict")
    if all(k.startswith("model.") for k in state):
        state = {k[len("model."):]: v for k, v in state.items()}

    own = model.state_dict()
    head = classifier_name(model)
    skipped, problems = [], []
    for name, tensor in own.items():
        if name not in state:
            problems.append(f"missing {name}")
        elif state[name].shape != tensor.shape:
            if name.startswith(head + ".") and not strict_head:
                skipped.append(name)
            else:
                problems.append(f"{name}: checkpoint {tuple(state[name].shape)} vs model {tuple(tensor.shape)}")
    problems += [f"unexpected {name}" for name in state if name not in own]
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise VideomlError(f"{path}: does not fit the model: {shown}")
    model.load_state_dict({k: v for k, v in state.items() if k not in skipped}, strict=False)
    return skipped
