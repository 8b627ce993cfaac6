"""What a run or a benchmark needs to be reproduced: the machine, the versions of everything that decides its
numbers, the installed packages, the command and the git commit."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import torch

# libraries whose versions decide decoding and model speed, recorded by name (all packages are listed too)
_KEY_PACKAGES = ("torchvision", "pytorchvideo", "lightning", "av", "decord", "torchcodec", "onnxruntime")
# recorded from the module when the process has loaded it: TensorFlow's distribution has several names
# (tensorflow, tensorflow-cpu, tensorflow[and-cuda]), and a PyTorch-only process should not load it to ask
_LOADED_MODULES = ("tensorflow", "keras")


def environment(device: str | torch.device | None = None) -> dict:
    """The record, with ``device`` (where a benchmark ran) named when given."""
    env = {"python": sys.version.split()[0], "platform": platform.platform(), "machine": platform.machine(),
           "cpu": _cpu_name(), "cores": os.cpu_count(), "cpu_threads": torch.get_num_threads(),
           "torch": torch.__version__, "cuda": torch.version.cuda,
           "cudnn": torch.backends.cudnn.version() if torch.cuda.is_available() else None,
           "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())], "command": sys.argv}
    for package in _KEY_PACKAGES:
        try:
            env[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    for name in _LOADED_MODULES:
        if name in sys.modules:
            env[name] = getattr(sys.modules[name], "__version__", None)
    if "av" in env:
        import av

        env["ffmpeg_libavcodec"] = av.library_versions.get("libavcodec")
    if shutil.which("ffmpeg"):
        env["ffmpeg"] = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.split("\n")[0]
    if device is not None:
        device = torch.device(device)
        env["device"] = torch.cuda.get_device_name(device) if device.type == "cuda" else env["cpu"]
    env["packages"] = sorted(f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions()
                             if d.metadata["Name"])
    try:
        root = Path(__file__).resolve().parents[1]
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True, timeout=5)
        if commit.returncode == 0:
            env["git_commit"], env["git_dirty"] = commit.stdout.strip(), bool(dirty.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    return env


def _cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()
