"""What every benchmark shares: its videos, the machine's description, writing results."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
from importlib import metadata
from pathlib import Path

import torch

from videoml.data.synth import SynthConfig, generate


def make_videos(root: Path, config: SynthConfig) -> list[Path]:
    """The videos of ``config`` under ``root``, made once (kept when already there)."""
    dataset = generate(config, root, num_workers=min(os.cpu_count() or 1, 8), progress=True)
    return [dataset.root / r["path"] for r in dataset.manifest()]


def environment() -> dict:
    """Versions of everything that decides a benchmark's numbers, and the machine."""
    env = {"machine": platform.machine(), "cpu": _cpu_name(), "cores": os.cpu_count(),
           "python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda}
    for package in ("torchvision", "pytorchvideo", "av", "decord", "torchcodec", "onnxruntime", "tensorflow"):
        try:
            env[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    if "av" in env:
        import av

        env["ffmpeg_libavcodec"] = av.library_versions.get("libavcodec")
    if shutil.which("ffmpeg"):
        env["ffmpeg"] = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.split("\n")[0]
    if torch.cuda.is_available():
        env["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return env


def _cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def write(results: dict, out: str | os.PathLike, name: str, markdown: str) -> Path:
    """``<out>/<name>.json`` (everything) and ``<out>/<name>.md`` (the table)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / f"{name}.md").write_text(markdown + "\n")
    return out
