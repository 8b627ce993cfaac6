"""Helpers shared by the tests."""

from pathlib import Path

import av
import numpy as np

# Small enough to make in about a second, large enough to show every class in every split.
SMALL = dict(videos_per_class=3, frames=24, width=96, height=96, gop=8, seed=3)


def decode_all(path: Path) -> tuple[np.ndarray, list[float]]:
    """Every frame of a file with PyAV, as (T, H, W, 3) uint8 RGB, and the frames' times in seconds."""
    with av.open(str(path)) as container:
        frames = [(f.to_ndarray(format="rgb24"), float(f.time)) for f in container.decode(video=0)]
    return np.stack([a for a, _ in frames]), [t for _, t in frames]
