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
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from videoml.errors import VideomlError, install_hint
from videoml.fileio import atomic_path
from videoml.infer.options import INDEX
from videoml.infer.results import read_records, result_key

HDF5 = "features.h5"


def save_features(out: str | os.PathLike, path: str, outputs: torch.Tensor) -> str:
    """Write a video's features (``outputs``: one row per clip and crop) as ``OUT/clips/NAME.npy`` and its mean as
    ``OUT/videos/NAME.npy``; NAME."""
    name = feature_name(path)
    clips = outputs.numpy().astype(np.float32, copy=False)
    _save(Path(out) / "clips" / f"{name}.npy", clips)
    _save(Path(out) / "videos" / f"{name}.npy", clips.mean(0))
    return name


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
        raise VideomlError(f"--format hdf5 needs h5py: {install_hint('h5py')}") from None
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
