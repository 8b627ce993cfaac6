"""What every benchmark shares: its videos (one recipe), random clip batches, rows of timed rounds, writing results."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from videoml.bench.measure import summarize
from videoml.data.synth import SynthConfig, generate
from videoml.data.transforms import pack_pathways
from videoml.spec import InputSpec


def web_videos(seconds: int, classes: tuple[str, ...] = SynthConfig().classes, per_class: int = 1) -> SynthConfig:
    """The benchmark videos: H.264 like web video, 320x240, 30 fps, a key frame every 2 s, B-frames."""
    return SynthConfig(classes=classes, videos_per_class=per_class, frames=30 * seconds, fps="30", width=320,
                       height=240, gop=60, bframes=2, seed=0)


def make_videos(root: Path, config: SynthConfig) -> list[Path]:
    """The videos of ``config`` under ``root``, made once (kept when already there)."""
    dataset = generate(config, root, num_workers=min(os.cpu_count() or 1, 8), progress=True)
    return [dataset.root / r["path"] for r in dataset.manifest()]


def ten_second_videos(folder: str | os.PathLike, prefix: str, count: int) -> tuple[Path, list[Path]]:
    """``count`` 10-second :func:`web_videos`, made once under ``folder/<prefix>-<made>x10s`` (every class alike, so
    a few more may be made): that folder, and the videos."""
    kinds = len(web_videos(10).classes)
    per_class = -(-count // kinds)
    root = Path(folder) / f"{prefix}-{per_class * kinds}x10s"
    return root, make_videos(root, web_videos(10, per_class=per_class))[:count]


def prepare_videos(paths: list[Path], root: Path, config) -> list[Path]:
    """``paths`` prepared under ``root`` with ``config`` (a :class:`~videoml.data.prepare.PrepareConfig`), once
    (kept when already there); their listing is written beside ``root``."""
    from videoml.data.prepare import prepare

    listing = root.with_name(root.name + ".csv")
    listing.write_text("".join(f"{p.resolve()} 0\n" for p in paths))
    summary = prepare(listing, root, config, num_workers=min(os.cpu_count() or 1, 8))
    return [summary.root / r["path"] for r in summary.records]


def first_pass(dataset) -> None:
    """Read every sample of a training data set once, untimed: frame indices built and cached, as from a training
    run's second epoch on."""
    from videoml.data.datamodule import encode_index

    for index in range(len(dataset)):
        dataset[encode_index(0, index, False, len(dataset))]


def random_clips(spec: InputSpec, batch: int, device: str | torch.device = "cpu", dtype=torch.float32,
                 memory_format=torch.contiguous_format):
    """A batch of random clips at ``spec``'s input, (B, C, T, H, W) (SlowFast: ``[slow, fast]``): normal floats,
    or uint8 pixels as decoding gives them."""
    shape = (batch, 3, spec.frames, spec.crop, spec.crop)
    if dtype == torch.uint8:
        video = torch.randint(0, 256, shape, dtype=torch.uint8, device=device)
    else:
        video = torch.randn(shape, dtype=dtype, device=device)
    video = pack_pathways(video, spec.slowfast_alpha)
    if isinstance(video, list):
        return [v.contiguous(memory_format=memory_format) for v in video]
    return video.contiguous(memory_format=memory_format)


def timed_row(rounds: list[float], items_per_step: int = 1, unit: str = "clip", **fields) -> dict:
    """A result row of timed rounds (seconds per step): ``fields``, the unit counted, and the statistics of
    :func:`~videoml.bench.measure.summarize` (``clips_per_s`` counts ``unit``\\ s)."""
    return {**fields, "unit": unit, "stats": summarize(rounds, items_per_step)}


def write(results: dict, out: str | os.PathLike, name: str, markdown: str) -> Path:
    """``<out>/<name>.json`` (everything) and ``<out>/<name>.md`` (the table)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / f"{name}.md").write_text(markdown + "\n")
    return out
