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


def write(results: dict, out: str | os.PathLike, name: str, markdown: str) -> Path:
    """``<out>/<name>.json`` (everything) and ``<out>/<name>.md`` (the table)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / f"{name}.md").write_text(markdown + "\n")
    return out
