"""What a model eats, declared once: the input spec that the data side and the model side both read.

A leaf module (it imports nothing of videoml), so that data never imports models and models never import data.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

KINETICS_MEAN = (0.45, 0.45, 0.45)
KINETICS_STD = (0.225, 0.225, 0.225)
RESIZERS = ("decoder", "torchvision", "huggingface")


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
    # Sampling and evaluation resizing as published weights were measured with (defaults: PyTorchVideo's recipes).
    fps: float | None = None  # clip frames taken at this rate by time stamps (stride then counts frames at this rate)
    eval_crop: int | None = None  # evaluation crops of this side, where not crop (PySlowFast's TEST_CROP_SIZE)
    eval_size: tuple[int, int] | None = None  # evaluation frames resized to exactly (height, width), not by short side
    # Who resizes evaluation frames: "decoder", FFmpeg's scaler while it converts to RGB (one pass, the fastest);
    # "torchvision", its resize of the decoded frames (bilinear, no antialiasing) and its centre crop, as the
    # weights.transforms() of torchvision's video models and PyTorchVideo's ShortSideScale + CenterCropVideo do
    # (these in float: here the resized frames are rounded to uint8); "huggingface", torchvision's antialiased
    # resize and a centre crop, as the image processors of transformers do: published accuracy was measured so.
    resize: str = "decoder"

    def __post_init__(self):
        if self.resize not in RESIZERS:
            raise ValueError(f"input resize must be one of {RESIZERS}, got {self.resize!r}")

    def crop_side(self, train: bool) -> int:
        """The side of training clips (``crop``) or of evaluation clips (``eval_crop``, where set)."""
        return self.crop if train or self.eval_crop is None else self.eval_crop

    def replace(self, **changes) -> "InputSpec":
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, data: dict) -> "InputSpec":
        """The spec of :func:`dataclasses.asdict` output (JSON lists back to tuples)."""
        data = dict(data)
        for key in ("train_scale", "mean", "std", "eval_size"):
            if data.get(key) is not None:
                data[key] = tuple(data[key])
        return cls(**data)
