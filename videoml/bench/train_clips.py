"""The ``train_clip`` scenario of ``videoml bench decode``: CPU time per training clip, original vs prepared data.

One training sample is what :class:`~videoml.data.datamodule.ClipDataset` does in a loader worker: open the video,
decode the clip's frames (from the key frame before them), scale, crop. Measured as process CPU time (one thread),
after a first untimed pass over the videos (frame indices built and cached, as from a training run's second epoch
on), for the original encodings and their ``videoml data prepare`` versions, with 1, 2 and 4 clips per decoded video
(``data.clips_per_video``). The same clips are drawn from both (a prepared video keeps its source's frame numbers).

Data sets (made once under the benchmark's data folder):

- ``synth``: the demo's own encoding (``videoml data synth`` defaults: 128x128, 48 frames at 16 fps, GOP 16,
  B-frames), trained with x3d_tiny;
- ``kinetics_like``: 10-s H.264 at 30 fps, GOP 250 with B-frames (YouTube-like: a key frame every ~8 s), half at
  340x256 (Kinetics' smallest common size) and half at 640x360, trained with X3D-S (13 frames, stride 6).

Prepared with the default settings except the short side, set to the model's largest training scale (no larger
picture is ever needed); and, to show what each default is worth, with one default undone at a time
(:data:`VARIANTS`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from videoml.bench.common import first_pass, make_videos, prepare_videos
from videoml.bench.measure import Timing, cycling, time_rounds
from videoml.data.datamodule import ClipDataset, encode_index
from videoml.data.datasets import VideoList
from videoml.data.prepare import PrepareConfig
from videoml.data.synth import SynthConfig
from videoml.models.registry import model_input

REPEATS = (1, 2, 4)
# name -> settings that differ from PrepareConfig's defaults
VARIANTS = {"prepared": {}, "prepared, no B-frames": {"bframes": 0}, "prepared, no fastdecode": {"tune": None},
            "prepared, all key frames": {"gop": 1}}


@dataclass(frozen=True)
class TrainSet:
    name: str
    model: str
    parts: tuple[SynthConfig, ...]


def train_sets(videos_per_class: int = 8, seconds: int = 10, seed: int = 0) -> list[TrainSet]:
    """The data sets: the synthetic one with ``videos_per_class`` of each of its 6 classes, and the Kinetics-like
    one with a quarter as many ``seconds``-long videos of 3 classes at each size."""
    kinetics = dict(classes=("move_right", "grow", "move_up"), videos_per_class=max(videos_per_class // 4, 1),
                    frames=30 * seconds, fps="30", gop=250, bframes=3, seed=seed)
    return [TrainSet("synth", "x3d_tiny", (SynthConfig(videos_per_class=videos_per_class, seed=seed),)),
            TrainSet("kinetics_like", "x3d_s", (SynthConfig(width=340, height=256, **kinetics),
                                                 SynthConfig(width=640, height=360, **kinetics)))]


def _videos(root: Path, paths: list[Path]) -> VideoList:
    return VideoList(tuple((p, 0) for p in paths), ("any",), str(root))


def _original(data: Path, train: TrainSet) -> list[Path]:
    paths = []
    for part in train.parts:
        paths += make_videos(data / f"train-{train.name}-{part.width}x{part.height}-{part.videos_per_class}x"
                                    f"{part.frames}", part)
    return paths


def _prepared(data: Path, train: TrainSet, originals: list[Path], variant: str) -> list[Path]:
    config = PrepareConfig(short_side=model_input(train.model).train_scale[1], **VARIANTS[variant])
    tag = "-".join(f"{k}{v}" for k, v in VARIANTS[variant].items()) or "defaults"
    root = data / f"train-{train.name}-{len(originals)}x{train.parts[0].frames}-prepared-s{config.short_side}-{tag}"
    return prepare_videos(originals, root, config)


def _cpu_seconds(dataset: ClipDataset, epoch: int) -> float:
    """Process CPU seconds per clip for one pass over the data set (epoch ``epoch``'s clips)."""
    n = len(dataset)
    step = cycling(lambda i: dataset[encode_index(epoch, i, False, n)], range(n))
    seconds = time_rounds(step, Timing(warmup=0, steps=n, repeats=1, max_spread=None), clock=time.process_time)
    return seconds[0] / dataset.repeats


def rows(data: str | Path, rounds: int, videos_per_class: int = 8, seconds: int = 10, seed: int = 0) -> list[dict]:
    """One row per data set x encoding x clips per video, with the ratio to the original at one clip per video."""
    data = Path(data)
    out = []
    for train in train_sets(videos_per_class, seconds, seed):
        spec = model_input(train.model)
        originals = _original(data, train)
        encodings = {"original": originals}
        encodings.update({variant: _prepared(data, train, originals, variant) for variant in VARIANTS})
        datasets = {(name, k): ClipDataset(_videos(data, paths), spec, train=True, clips_per_video=k, seed=seed)
                    for name, paths in encodings.items() for k in REPEATS}
        for dataset in datasets.values():
            first_pass(dataset)
        times = {key: [] for key in datasets}
        for r in range(rounds):  # interleaved, so that a drifting machine shifts every cell alike
            for key, dataset in datasets.items():
                times[key].append(_cpu_seconds(dataset, r + 1))
        base = float(np.median(times[("original", 1)]))
        for (name, k), values in times.items():
            paths = encodings[name]
            per_clip = float(np.median(values))
            out.append({"scenario": "train_clip", "backend": "pyav", "data": train.name, "model": train.model,
                        "encoding": name, "clips_per_video": k, "cpu_ms_per_clip": round(1000 * per_clip, 3),
                        "clips_per_cpu_s": round(1 / per_clip, 1), "ratio_to_original": round(base / per_clip, 2),
                        "bytes": sum(p.stat().st_size for p in paths), "videos": len(paths)})
    return out


def table(rows: list[dict]) -> str:
    lines = ["| data (model) | encoding | clips per video | CPU ms per clip | clips per CPU-s | vs original, 1 clip "
             "| size |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['data']} ({r['model']}) | {r['encoding']} | {r['clips_per_video']} | "
                     f"{r['cpu_ms_per_clip']:g} | {r['clips_per_cpu_s']:g} | {r['ratio_to_original']:.2f}x | "
                     f"{r['bytes'] / 2**20:.1f} MiB |")
    return "\n".join(lines)
