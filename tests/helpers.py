"""Helpers shared by the tests."""

import csv
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import av
import numpy as np
import pytest

from videoml.data.decoding import BACKENDS, INSTALL, backend_available
from videoml.data.synth import MOTIONS


def installed(backend: str):
    """``backend`` as a test parameter, skipped with what to install where it is not available."""
    reason = f"the {backend} backend is not installed ({INSTALL.get(backend)})"
    return pytest.param(backend, marks=pytest.mark.skipif(not backend_available(backend), reason=reason))


BACKEND_PARAMS = [installed(b) for b in BACKENDS]  # every backend; those not installed skip
INSTALLED = tuple(b for b in BACKENDS if backend_available(b))


def write_audio_only(path: Path) -> None:
    """A WAV file: an audio stream, no video."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), dtype=np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def decord3() -> bool:
    """Whether the decord installed is decord2's 3.x (aarch64), which refuses HEVC with B-frames (0.6.0 reads it)."""
    if not backend_available("decord"):
        return False
    from videoml.data.decoding.decord_reader import DECORD3

    return DECORD3

# Small enough to make in about a second, large enough to show every class (rotations too) in every split.
SMALL = dict(classes=tuple(MOTIONS), videos_per_class=3, frames=24, width=96, height=96, gop=8, seed=3)

# The learning tests' data set: two motions, each in both directions (a frame model cannot tell any of them apart).
LEARNABLE = dict(classes=("move_left", "move_right", "grow", "shrink"), videos_per_class=60, splits=(0.6, 0.4, 0.0),
                 seed=5)


def decode_all(path: Path) -> tuple[np.ndarray, list[float]]:
    """Every frame of a file with PyAV, as (T, H, W, 3) uint8 RGB, and the frames' times in seconds."""
    with av.open(str(path)) as container:
        frames = [(f.to_ndarray(format="rgb24"), float(f.time)) for f in container.decode(video=0)]
    return np.stack([a for a, _ in frames]), [t for _, t in frames]


# Files like those real data sets hold: codecs, containers, GOPs, B-frames, variable rate, non-zero start times.
CORPUS = {
    "h264": dict(codec="h264", gop=12),
    "h264_long_gop": dict(codec="h264", gop=40, frames=90),
    "h264_vfr_start": dict(codec="h264", vfr=True, start_time=1.5),
    "h264_ntsc": dict(codec="h264", fps="30000/1001", bframes=3, gop=15),
    "hevc": dict(codec="hevc", gop=12),
    "vp9_vfr_start": dict(codec="vp9", vfr=True, start_time=0.25, gop=20),
    "mpeg4_avi": dict(codec="mpeg4", bframes=0, gop=10),
    "mpeg4_avi_bframes": dict(codec="mpeg4", bframes=2, gop=10),
}


# Traits of real files the generator can give (their pictures are compared with FFmpeg's command line's, since PyAV's
# own to_ndarray converts 10-bit pictures otherwise and ignores display matrices).
TRAITS = {
    "h264_open_gop": dict(codec="h264", open_gop=True, gop=12, bframes=3),
    "h264_10bit_rotated": dict(codec="h264", bit_depth=10, rotation=90),
    "hevc_10bit": dict(codec="hevc", bit_depth=10, gop=12),
    "vp9_upside_down": dict(codec="vp9", rotation=180, gop=20),
}


def corpus_config(kind: str):
    from videoml.data.synth import SynthConfig

    options = {"frames": 60, **CORPUS.get(kind, TRAITS.get(kind))}
    return SynthConfig(classes=("move_right", "rotate_cw"), videos_per_class=1, width=64, height=48, seed=1,
                       **options)


def videoml(*args, cwd=None, env=None) -> subprocess.CompletedProcess:
    """The command line, in a fresh process, as users run it (``env``: variables added to this one's)."""
    return subprocess.run([sys.executable, "-m", "videoml", *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **env} if env else None)


def fit_args(dataset, root, *extra, train=None) -> list[str]:
    """`videoml fit` options for a quick CPU run of the demo config on ``dataset``, logging under ``root``."""
    train = train or dataset.split_file("train")
    return ["--config", "configs/synth_x3d_tiny.yaml", "--data.train.path", str(train),
            "--data.val.path", str(dataset.split_file("val")), "--data.test.path", str(dataset.split_file("test")),
            "--data.batch_size", "4", "--data.num_workers", "0", "--trainer.max_epochs", "1",
            "--trainer.check_val_every_n_epoch", "1",
            "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(root),
            "--trainer.logger.init_args.save_dir", str(root), "--model.model_options", '{"dropout_rate": 0.0}', *extra]


def train_list_with_a_broken_video(dataset, folder: Path) -> tuple[Path, Path]:
    """A copy of ``dataset``'s training list (and classes) in ``folder``, with one undecodable file added; returns
    (the list, the broken file)."""
    listing, broken = folder / "train.csv", folder / "broken.mp4"
    broken.write_bytes(b"garbage")
    lines = dataset.split_file("train").read_text().splitlines()
    listing.write_text("".join(f"{dataset.root / line}\n" for line in lines) + f"{broken} 0\n")
    (folder / "classes.txt").write_text(dataset.classes_file.read_text())
    return listing, broken


def metrics(run: Path) -> dict:
    """metric name -> list of (epoch, value) from the CSV log."""
    out = {}
    with open(run / "metrics.csv") as f:
        for row in csv.DictReader(f):
            for key, value in row.items():
                if key not in ("epoch", "step") and value:
                    out.setdefault(key, []).append((int(row["epoch"]), float(value)))
    return out


def hf_cache(root: Path, repo: str, save) -> dict:
    """A Hugging Face cache under ``root`` holding ``repo`` as the hub's download would lay it out (refs/main naming a
    snapshot folder), its files written by ``save(folder)`` (``save_pretrained``); the environment that points
    transformers at it, offline."""
    commit = "0" * 40
    entry = root / "hub" / f"models--{repo.replace('/', '--')}"
    snapshot = entry / "snapshots" / commit
    snapshot.mkdir(parents=True)
    save(snapshot)
    (entry / "refs").mkdir()
    (entry / "refs" / "main").write_text(commit)
    return {"HF_HOME": str(root), "HF_HUB_OFFLINE": "1"}


def _rewrite(shard, change) -> None:
    """Shard ``shard`` with its members changed by ``change(name, bytes) -> bytes``."""
    with tarfile.open(shard) as tar:
        members = [(m.name, tar.extractfile(m).read()) for m in tar.getmembers()]
    with tarfile.open(shard, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            data = change(name, data)
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def damaged_shards(shards: Path, copy: Path, damages=("sample", "truncated", "missing", "altered")):
    """A copy of the shard set ``shards`` at ``copy`` with, in its first training shards in turn, what ``damages``
    names: "sample": a sample's video garbage (the shard's checksum rewritten: it was packed so), "truncated": a shard
    cut to half its size, "missing": a shard removed, "altered": a byte changed in place. -> (the copy, {damaged
    shard's name: its keys}, the key of the garbage sample)."""
    shutil.copytree(shards, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    records = dict(zip(damages, manifest["splits"]["train"]["shards"]))
    corrupt, truncated, missing, altered = (records.get(d) for d in ("sample", "truncated", "missing", "altered"))
    whole, bad_key = {r["name"]: r["keys"] for r in (truncated, missing, altered) if r}, None
    if corrupt:
        bad_key = corrupt["keys"][0]
        _rewrite(copy / corrupt["name"], lambda name, data: b"not a video" if name == f"{bad_key}.mp4" else data)
        data = (copy / corrupt["name"]).read_bytes()
        corrupt.update(bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
        (copy / "manifest.json").write_text(json.dumps(manifest))
    if truncated:
        path = copy / truncated["name"]
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    if missing:
        (copy / missing["name"]).unlink()
    if altered:
        path = copy / altered["name"]
        data = bytearray(path.read_bytes())
        data[700] ^= 0xFF
        path.write_bytes(bytes(data))
    return copy, whole, bad_key
