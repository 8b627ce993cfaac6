"""What every benchmark shares: its videos and writing its results."""

from __future__ import annotations

import json
import os
from pathlib import Path

from videoml.data.synth import SynthConfig, generate


def make_videos(root: Path, config: SynthConfig) -> list[Path]:
    """The videos of ``config`` under ``root``, made once (kept when already there)."""
    dataset = generate(config, root, num_workers=min(os.cpu_count() or 1, 8), progress=True)
    return [dataset.root / r["path"] for r in dataset.manifest()]


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


def write(results: dict, out: str | os.PathLike, name: str, markdown: str) -> Path:
    """``<out>/<name>.json`` (everything) and ``<out>/<name>.md`` (the table)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / f"{name}.md").write_text(markdown + "\n")
    return out
