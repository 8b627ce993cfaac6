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

import fnmatch
from dataclasses import dataclass
from typing import Callable

import numpy as np
from torch import nn

from videoml.errors import VideomlError
from videoml.spec import InputSpec
from videoml.vocab import check


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Callable[..., nn.Module]  # builder(num_classes) -> module returning logits
    input: InputSpec
    description: str
    family: str = "pytorchvideo"  # whose architecture: pytorchvideo, torchvision, huggingface


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


def _torchvision(function: str) -> Callable[..., nn.Module]:
    """A torchvision video model, untrained (its published weights load by name, :mod:`videoml.models.zoo`)."""

    def build(num_classes: int, **overrides) -> nn.Module:
        from torchvision.models import video

        return getattr(video, function)(weights=None, num_classes=num_classes, **overrides)

    build.__name__ = function
    return build


def _register_torchvision(name: str, input: InputSpec, description: str) -> None:
    register(name, _torchvision(name), input, description, family="torchvision")


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


def register(name: str, builder, input: InputSpec, description: str, family: str = "pytorchvideo") -> None:
    MODELS[name] = ModelEntry(name, builder, input, description, family)


# PyTorchVideo's architectures evaluate as its published numbers were measured: the short side scaled by torch's
# bilinear interpolation (ShortSideScale), then the centre crop (CenterCropVideo), which resize="torchvision" does;
# the crops as PySlowFast tested them: the short side scaled to TEST_CROP_SIZE, crops of that side
_224 = dict(crop=224, train_scale=(256, 320), eval_scale=256, eval_crop=256, resize="torchvision")
_160 = dict(crop=160, train_scale=(182, 228), eval_scale=182, eval_crop=182, resize="torchvision")
register("x3d_xs", _hub("x3d_xs"), InputSpec(4, 12, **_160), "X3D-XS, 4x12, 160px")
register("x3d_s", _hub("x3d_s"), InputSpec(13, 6, **_160), "X3D-S, 13x6, 160px")
register("x3d_m", _hub("x3d_m"), InputSpec(16, 5, **_224), "X3D-M, 16x5, 224px")
register("x3d_l", _hub("x3d_l"), InputSpec(16, 5, 312, (356, 446), 356, eval_crop=356, resize="torchvision"),
         "X3D-L, 16x5, 312px")
register("slow_r50", _hub("slow_r50"), InputSpec(8, 8, **_224), "Slow-only ResNet-50, 8x8")
register("c2d_r50", _hub("c2d_r50"), InputSpec(8, 8, **_224), "C2D ResNet-50, 8x8")
register("i3d_r50", _hub("i3d_r50"), InputSpec(8, 8, **_224), "I3D ResNet-50, 8x8")
register("slowfast_r50", _hub("slowfast_r50"), InputSpec(32, 2, slowfast_alpha=4, **_224),
         "SlowFast ResNet-50, 8x8 (fast pathway 32x2, alpha 4)")
register("slowfast_r101", _hub("slowfast_r101"), InputSpec(32, 2, slowfast_alpha=4, **_224),
         "SlowFast ResNet-101, 8x8 (fast pathway 32x2, alpha 4)")
register("r2plus1d_r50", _hub("r2plus1d_r50"), InputSpec(16, 4, **_224), "R(2+1)D ResNet-50, 16x4")
register("csn_r101", _hub("csn_r101"), InputSpec(32, 2, **_224), "ir-CSN ResNet-101, 32x2")
register("mvit_base_16x4", _hub("mvit_base_16x4", "head_num_classes", softmax_head=False),
         InputSpec(16, 4, 224, (256, 320), 224, resize="torchvision"), "MViT-B, 16x4")
register("efficient_x3d_xs", _efficient_x3d("XS"), InputSpec(4, 12, **_160),
         "EfficientX3D-XS (mobile CPU), 4x12, 160px")
register("efficient_x3d_s", _efficient_x3d("S"), InputSpec(13, 6, **_160),
         "EfficientX3D-S (mobile CPU), 13x6, 160px")
# Small enough to train on a laptop CPU in minutes; the frame model is the single-frame baseline.
register("x3d_tiny", _x3d_tiny, InputSpec(4, 8, 64, (72, 88), 72), "X3D (S width, 256-d head), 4x8, 64px")
register("slow_tiny", _narrow("pytorchvideo.models.resnet", "create_resnet", stem_conv_kernel_size=(1, 7, 7)),
         InputSpec(4, 8, 64, (72, 88), 72), "Slow-only ResNet-50 at 1/8 width, 4x8, 64px")
register("r2plus1d_tiny", _narrow("pytorchvideo.models.r2plus1d", "create_r2plus1d"), InputSpec(8, 4, 64, (72, 88), 72),
         "R(2+1)D ResNet-50 at 1/8 width, 8x4, 64px")
register("x3d_tiny_frame", _x3d_tiny, InputSpec(1, 1, 64, (72, 88), 72),
         "x3d_tiny on one frame: the frame-level baseline")


# torchvision's video models, with the input their Kinetics-400 weights were trained and evaluated with: each enum's
# weights.transforms() (resize, crop, mean, std) and its _docs (clip_len frames at frame_rate); training draws the
# short side from train_scale where torchvision's recipe resizes to a fixed size (tests/models/test_torchvision.py
# holds every value against torchvision's own).
_TV_KINETICS = dict(mean=(0.43216, 0.394666, 0.37645), std=(0.22803, 0.22145, 0.216989), resize="torchvision")
_tv_112 = dict(crop=112, train_scale=(128, 128), eval_scale=128, eval_size=(128, 171), fps=15, **_TV_KINETICS)
_register_torchvision("r3d_18", InputSpec(16, 1, **_tv_112), "R3D-18, 16 frames at 15 fps, 112px")
_register_torchvision("mc3_18", InputSpec(16, 1, **_tv_112), "MC3-18, 16 frames at 15 fps, 112px")
_register_torchvision("r2plus1d_18", InputSpec(16, 1, **_tv_112), "R(2+1)D-18, 16 frames at 15 fps, 112px")
_register_torchvision("s3d", InputSpec(128, 1, 224, (256, 256), 256, eval_size=(256, 256), fps=15, **_TV_KINETICS),
                      "S3D, 128 frames at 15 fps (its recipe trains on 64), 224px")
_tv_mvit = dict(crop=224, train_scale=(256, 320), eval_scale=256, fps=7.5, resize="torchvision")
_register_torchvision("mvit_v1_b", InputSpec(16, 1, **_tv_mvit), "MViT-V1-B, 16 frames at 7.5 fps, 224px")
_register_torchvision("mvit_v2_s", InputSpec(16, 1, **_tv_mvit), "MViT-V2-S, 16 frames at 7.5 fps, 224px")
_tv_swin = dict(crop=224, train_scale=(256, 320), eval_scale=256, fps=15, mean=(0.485, 0.456, 0.406),
                std=(0.229, 0.224, 0.225), resize="torchvision")
for _size in "tsb":
    _register_torchvision(f"swin3d_{_size}", InputSpec(32, 1, **_tv_swin),
                          f"Video Swin-{_size.upper()}, 32 frames at 15 fps, 224px")


def model_entry(name: str) -> ModelEntry:
    """The entry of a registered name, or of a Hugging Face model by name (``hf:ORG/NAME``, ``hf:FOLDER``)."""
    if name.startswith("hf:"):
        from videoml.models.huggingface import hf_entry

        return hf_entry(name)
    return MODELS[check(name, MODELS, "model", VideomlError)]


def model_input(name: str, overrides: dict | None = None) -> InputSpec:
    """The model's canonical input, with ``overrides`` (e.g. ``{"frames": 16}``) applied."""
    return model_entry(name).input.replace(**(overrides or {}))


def build_model(name: str, num_classes: int, **overrides) -> nn.Module:
    """A freshly initialised model returning logits of ``num_classes`` classes."""
    if num_classes < 1:
        raise VideomlError(f"num_classes must be >= 1, got {num_classes}")
    model = model_entry(name).builder(num_classes, **overrides)
    return _keep_input_lists(_python_ints(_native_swish(_any_input_size(model))))


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style ``pattern`` (``"x3d*"``), in registration order."""
    return [name for name in MODELS if fnmatch.fnmatchcase(name, pattern)]
