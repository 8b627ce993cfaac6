"""``videoml extract``: embeddings of many videos, per clip and per video, by the same run as ``videoml infer``.

The inputs, clip sampling (views x crops, ``--dense``), decoding workers, devices, error records, exit codes and
``--resume`` are :mod:`videoml.infer.run`'s; only what is recorded differs. The features are the classifier's input
or a named block's pooled output (:mod:`videoml.models.features`).

Layout of the output folder ``OUT``::

    OUT/index.jsonl          one record per video, as each is done (the source of truth, as infer's JSONL):
                             path, status, features (NAME), dim, crops, starts / ends (seconds, one per clip),
                             clips, timing, error
    OUT/clips/NAME.npy       float32 (clips x crops, dim): every clip's features, a clip's crops side by side
    OUT/videos/NAME.npy      float32 (dim,): the video's, the mean over its clips and crops
    OUT/features.h5          with --format hdf5, packed from the above when the run ends (see :func:`pack_hdf5`)
    OUT/extract.json         the settings that decide the features (model, layer, views, crops, dense, precision):
                             ``--resume`` with others is refused, as the index would mix features of two kinds

``NAME`` is the file's stem and a hash of its real path (videos of the same name in different folders stay apart).
A video's arrays are written (atomically) before its record, so a killed run leaves at most arrays without a
record, which the resumed run writes again: every video is in the index exactly once.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from videoml.errors import UsageError, VideomlError
from videoml.fileio import atomic_path, write_atomic
from videoml.infer.clips import VideoItem
from videoml.infer.predictor import Predictor, load_predictor
from videoml.infer.results import read_records, result_key
from videoml.infer.run import VideoRun
from videoml.vocab import check

INDEX = "index.jsonl"
HDF5 = "features.h5"
SETTINGS = "extract.json"  # what decides the features; a resumed run must have the same
FeatureFormat = Literal["npy", "hdf5"]


@dataclass
class ExtractConfig(VideoRun):
    out: str = "features"
    """output folder: index.jsonl, clips/NAME.npy, videos/NAME.npy (and features.h5 with --format hdf5)"""
    layer: str | None = None
    """'head' (default): the classifier's input; or a block's name (e.g. blocks.4), its output pooled over time and
    space (default for a `videoml export --features` file: the layer it was exported with)"""
    format: FeatureFormat = "npy"
    """npy: an array per video and clip set, plus the index; hdf5: also one features.h5 packed at the end"""

    worker_paths = ("model", "out")

    def outputs(self) -> tuple[str, str | None]:
        return str(Path(self.out) / INDEX), None

    def check(self) -> None:
        check(self.format, FeatureFormat, "format")
        super().check()

    def settings(self) -> dict:
        """The options that decide what the features are: a resumed run with others would mix them in one index."""
        model = result_key(self.model) if os.path.exists(self.model) else self.model
        return {"model": model, "layer": self.layer, "views": self.views, "crops": self.crops, "dense": self.dense,
                "precision": self.precision}

    def begin(self) -> None:
        """Record :meth:`settings` in ``OUT/extract.json``; refuse to resume an output made with others."""
        path, settings, index = Path(self.out) / SETTINGS, self.settings(), Path(self.out) / INDEX
        if index.is_file() and index.stat().st_size and not (self.resume or self.overwrite):
            return  # the run stops at its existing output (ResultWriter), which it leaves as it is
        if self.resume and path.is_file():
            try:
                recorded = json.loads(path.read_text())["settings"]
            except (OSError, ValueError, KeyError, TypeError):
                recorded = None
            changed = [f"{k} {recorded.get(k)!r} -> {v!r}" for k, v in settings.items()
                       if recorded is not None and recorded.get(k) != v]
            if recorded is None or changed:
                raise UsageError(f"{self.out}: its features were extracted with other settings ("
                                 f"{'; '.join(changed) or 'unreadable ' + SETTINGS}); resume with the same ones, "
                                 "or --overwrite, or another output folder")
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps({"settings": settings}, indent=2) + "\n")

    def load(self, device: str) -> Predictor:
        return load_predictor(self.model, device, self.precision, self.memory_format, features=self.layer or "",
                              optimize=self.optimize, compile=self.compile)

    def record(self, item: VideoItem, outputs: torch.Tensor, predictor: Predictor) -> dict:
        name = feature_name(item.path)
        clips = outputs.numpy().astype(np.float32, copy=False)
        _save(Path(self.out) / "clips" / f"{name}.npy", clips)
        _save(Path(self.out) / "videos" / f"{name}.npy", clips.mean(0))
        return {"path": item.path, "status": "ok", "features": name, "dim": int(clips.shape[1]),
                "crops": item.crops, "starts": [round(float(s), 4) for s in item.starts],
                "ends": [round(float(e), 4) for e in item.ends], **self.timing(item), "error": None}

    def finish(self) -> str | None:
        return f"packed into {pack_hdf5(self.out)}" if self.format == "hdf5" else None


def feature_name(path: str) -> str:
    """The file name (without suffix) of a video's arrays: its stem and a hash of its real path."""
    digest = hashlib.sha1(os.fsencode(result_key(path))).hexdigest()[:12]
    return f"{Path(path).stem[:100]}-{digest}"


def _save(path: Path, array: np.ndarray) -> None:
    """Write ``array`` as ``.npy``, atomically (a reader or a resumed run never sees half of it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, array)


@dataclass(frozen=True)
class Features:
    """What an ``extract`` output holds, for its ``ok`` videos in the index's order."""

    paths: list[str]
    videos: np.ndarray  # (N, dim)
    clips: list[np.ndarray]  # N x (clips x crops, dim)
    records: list[dict]


def load_features(out: str | os.PathLike) -> Features:
    """The features in an ``extract`` output folder (videos that failed left out; their records say why)."""
    out = Path(out)
    index = out / INDEX
    if not index.is_file():
        raise VideomlError(f"{out}: not a videoml extract output (no {INDEX})")
    records = [r for r in read_records(index) if r["status"] == "ok"]
    try:
        clips = [np.load(out / "clips" / f"{r['features']}.npy") for r in records]
        videos = [np.load(out / "videos" / f"{r['features']}.npy") for r in records]
    except (OSError, ValueError) as e:
        raise VideomlError(f"{out}: a feature file is missing or unreadable ({e})") from None
    dim = records[0]["dim"] if records else 0
    return Features([r["path"] for r in records], np.stack(videos) if videos else np.zeros((0, dim), np.float32),
                    clips, records)


def pack_hdf5(out: str | os.PathLike) -> Path:
    """``OUT/features.h5`` from the output folder, written atomically. Datasets: ``path`` (N,) UTF-8 strings (bytes
    of file names that are not UTF-8 as ``\\udcXX`` escapes), ``video`` (N, dim), ``clip`` (M, dim) every
    clip x crop row, ``clip_video`` (M,) the row of ``video`` it belongs to, ``clip_start`` / ``clip_end`` (M,)
    seconds."""
    try:
        import h5py
    except ImportError:
        raise VideomlError("--format hdf5 needs h5py: pip install 'videoml[hdf5]'") from None
    features = load_features(out)
    owner, starts, ends = [], [], []
    for row, (record, clips) in enumerate(zip(features.records, features.clips)):
        owner += [row] * len(clips)
        starts += [s for s in record["starts"] for _ in range(record["crops"])]
        ends += [e for e in record["ends"] for _ in range(record["crops"])]
    path = Path(out) / HDF5
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("path", data=[p.encode("utf-8", "backslashreplace") for p in features.paths],
                         dtype=h5py.string_dtype())
        f.create_dataset("video", data=features.videos)
        dim = features.videos.shape[1]
        f.create_dataset("clip", data=np.concatenate(features.clips) if features.clips else np.zeros((0, dim)))
        f.create_dataset("clip_video", data=np.asarray(owner, dtype=np.int64))
        f.create_dataset("clip_start", data=np.asarray(starts, dtype=np.float64))
        f.create_dataset("clip_end", data=np.asarray(ends, dtype=np.float64))
    return path
