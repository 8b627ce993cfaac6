"""What a model eats, declared once: the input spec that the data side and the model side both read.

A leaf module (it imports nothing of videoml), so that data never imports models and models never import data.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

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

    @classmethod
    def from_dict(cls, data: dict) -> "InputSpec":
        """The spec of :func:`dataclasses.asdict` output (JSON lists back to tuples)."""
        data = dict(data)
        for key in ("train_scale", "mean", "std"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data)
