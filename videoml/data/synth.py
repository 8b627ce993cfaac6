"""The learnable synthetic video data set: a class is decided by motion alone.

Every video shows one random irregular polygon (random shape, colour, size) over a random smooth background texture.
Exactly one property of the object changes with time, and the class says which one and in which direction:
it moves left/right/up/down, grows/shrinks, or (on request) rotates clockwise/anticlockwise.

The object is always lighter than its background (as a lit object on a dark table), so which side of an edge is the
object shows locally: a small network needs that to tell growing from shrinking. Rotation classes are left out of the
default set: no small model learnt the direction of a turn from scratch within minutes of CPU. data/README.md has
the measurements behind both choices.

Why a single frame says nothing about the class: every property that does not move is drawn from the same distribution
that a moving property has at a uniformly random moment (see :func:`_sample_track`), the angle is uniform, and speeds
are random. So the distribution of any one frame is the same for every class; only the change between frames tells
classes apart, and a model must use time.

The files are real encodes made by FFmpeg's encoders through PyAV (H.264 with B-frames and a fixed GOP by default;
HEVC, MPEG-4 Part 2 in AVI and VP9 in WebM on request), optionally with variable frame rate and a non-zero start time.
The output is deterministic for a seed, whatever the number of workers.

Layout written under ``out``::

    classes.txt                     class names, line i is label i
    train.csv, val.csv, test.csv    PyTorchVideo labeled-paths files: "<path> <label>" a line, paths relative to ``out``
    manifest.jsonl                  one record per video: path, label, split, and every generated parameter
    synth.json                      the configuration that made the set (and whether it finished)
    videos/<class>/<class>_NNNN.<ext>
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator, Literal

import numpy as np
from PIL import Image, ImageDraw

from videoml.data.encode import CODECS, Encoding, encode_video
from videoml.data.outdir import claim, to_json
from videoml.fileio import output_lock, write_atomic
from videoml.processes import process_pool
from videoml.errors import UsageError
from videoml.vocab import refusal

# class name -> (the property that changes, its direction). Image y points down, so a growing angle turns clockwise.
MOTIONS: dict[str, tuple[str, int]] = {
    "move_left": ("x", -1),
    "move_right": ("x", +1),
    "move_up": ("y", -1),
    "move_down": ("y", +1),
    "rotate_cw": ("angle", +1),
    "rotate_ccw": ("angle", -1),
    "grow": ("scale", +1),
    "shrink": ("scale", -1),
}
# The default set: the motions a small model learns from scratch in minutes of CPU (see the module docstring).
DEFAULT_CLASSES = ("move_left", "move_right", "move_up", "move_down", "grow", "shrink")
SPLITS = ("train", "val", "test")

# Object geometry, relative to the short side of the frame.
_RADIUS = 0.18  # object radius at scale 1
_SCALE_RANGE = (0.6, 1.4)
_VERTICES = (5, 7)  # polygon corners, inclusive range
# Colours: background channels in [lo, hi), its texture up to _TEXTURE levels either side; the object's mean level
# at least _CONTRAST above the background's.
_BACKGROUND_LEVELS = (30, 121)
_TEXTURE = 30
_CONTRAST = 80
# How far a moving property travels over the whole video: a fraction of its range (angle: radians). Large enough that
# the motion is plain at the low resolutions a CPU model sees (several pixels between the frames of a clip).
_TRAVEL = {"x": (0.6, 0.85), "y": (0.6, 0.85), "scale": (0.6, 0.85), "angle": (0.5 * math.pi, math.pi)}


@dataclass(frozen=True)
class SynthConfig:
    """Everything that decides the output. Equal configs give equal data sets."""

    classes: tuple[str, ...] = DEFAULT_CLASSES
    """class names, of move_left, move_right, move_up, move_down, rotate_cw, rotate_ccw, grow, shrink"""
    videos_per_class: int = 40
    frames: int = 48
    """frames per video"""
    fps: str = "16"
    """frame rate, a number or a fraction such as 30000/1001"""
    width: int = 128
    height: int = 128
    codec: str = "h264"
    """h264 (MP4), hevc (MP4), mpeg4 (MPEG-4 Part 2 in AVI), vp9 (WebM)"""
    gop: int = 16
    """key frame interval in frames"""
    bframes: int | None = None
    """max consecutive B-frames (default 2; 0 for mpeg4: AVI has no presentation times, so MPEG-4 Part 2 B-frames
    there are "packed" bitstreams as in DivX/Xvid files, which only the pyav backend reads; ask for them to get one)"""
    vfr: bool = False
    """variable frame rate: frame intervals jitter between 0.5x and 1.5x the nominal one"""
    start_time: float = 0.0
    """presentation time of the first frame, seconds"""
    bit_depth: Literal[8, 10] = 8
    """8 (yuv420p) or 10 (yuv420p10le; h264 and hevc) bits per component"""
    open_gop: bool = False
    """open GOPs: key frames after the first are not IDR and leading B-frames refer across them (h264)"""
    rotation: Literal[0, 90, 180, 270] = 0
    """a display matrix turning the pictures this many degrees counter-clockwise (not in AVI)"""
    splits: tuple[float, float, float] = (0.7, 0.15, 0.15)
    """train, val, test fractions"""
    seed: int = 0

    def __post_init__(self):
        if self.bframes is None:  # resolved here: the recorded settings say what was made
            object.__setattr__(self, "bframes", 0 if self.codec == "mpeg4" else 2)
        problems = [line for line in (refusal(list(self.classes), MOTIONS, "classes"),
                                       refusal(self.codec, CODECS, "codec")) if line]
        if len(set(self.classes)) < 2 or len(set(self.classes)) != len(self.classes):
            problems.append("classes must name at least two distinct classes")
        if self.codec in CODECS and not CODECS[self.codec].variable_rate and (self.vfr or self.start_time):
            problems.append(f"codec {self.codec!r} writes {CODECS[self.codec].format.upper()}, which has no variable "
                            "frame rate nor start offset")
        problems += self._trait_problems()
        if self.videos_per_class < 1:
            problems.append("videos_per_class must be >= 1")
        if self.frames < 2:
            problems.append("frames must be >= 2 (motion needs two frames)")
        try:
            fps = Fraction(self.fps)
        except (ValueError, ZeroDivisionError):
            fps = None
        if fps is None or fps <= 0:
            problems.append(f"fps must be a positive number or fraction, got {self.fps!r}")
        if min(self.width, self.height) < 32 or self.width % 2 or self.height % 2:
            problems.append(f"size must be even and at least 32x32, got {self.width}x{self.height}")
        if self.gop < 1 or self.bframes < 0:
            problems.append("gop must be >= 1 and bframes >= 0")
        if self.start_time < 0:
            problems.append("start_time must be >= 0")
        if len(self.splits) != 3 or min(self.splits) < 0 or not math.isclose(sum(self.splits), 1.0, abs_tol=1e-6):
            problems.append(f"splits must be three fractions (train, val, test) summing to 1, got {self.splits}")
        if problems:
            raise UsageError("invalid synthetic data set: " + "; ".join(problems))

    def _trait_problems(self) -> list[str]:
        problems = []
        if self.bit_depth not in (8, 10) or self.bit_depth == 10 and self.codec not in ("h264", "hevc"):
            problems.append(f"bit_depth must be 8, or 10 with h264 or hevc; got {self.bit_depth}")
        if self.open_gop and self.codec != "h264":
            problems.append("open_gop needs codec h264")
        if self.rotation not in (0, 90, 180, 270) or self.rotation and self.codec == "mpeg4":
            problems.append(f"rotation must be 0, 90, 180 or 270, and AVI (mpeg4) has none; got {self.rotation}")
        return problems

    @property
    def pix_fmt(self) -> str:
        return "yuv420p10le" if self.bit_depth == 10 else "yuv420p"

    @property
    def frame_rate(self) -> Fraction:
        return Fraction(self.fps)

    def to_dict(self) -> dict:
        return json.loads(json.dumps(dataclasses.asdict(self)))


@dataclass(frozen=True)
class SynthDataset:
    """Where a generated set lives."""

    root: Path
    classes: tuple[str, ...]

    def split_file(self, split: str) -> Path:
        return self.root / f"{split}.csv"

    @property
    def classes_file(self) -> Path:
        return self.root / "classes.txt"

    @property
    def manifest_file(self) -> Path:
        return self.root / "manifest.jsonl"

    def manifest(self) -> list[dict]:
        with open(self.manifest_file) as f:
            return [json.loads(line) for line in f]


# --- planning: every random choice of one video, cheap, no pixels -------------------------------------------------


def _sample_track(rng: np.random.Generator, lo: float, hi: float, travel: float, direction: int) -> tuple[float, float]:
    """(value at t=0, change over the video) of a property inside [lo, hi].

    A moving property starts where it can travel its full distance. A still one (direction 0) takes the value that a
    moving one has at a uniformly random moment, so a single frame cannot tell still from moving.
    """
    offset = rng.uniform(0.0, hi - lo - travel)
    if direction == 0:
        return lo + offset + travel * rng.uniform(), 0.0
    start = lo + offset if direction > 0 else hi - offset
    return start, direction * travel


def plan_video(config: SynthConfig, index: int) -> dict:
    """All parameters of video ``index``: a JSON-able record (the manifest line, less path and split)."""
    rng = np.random.default_rng([config.seed, index])
    label = index % len(config.classes)
    name = config.classes[label]
    moving, direction = MOTIONS[name]
    w, h = config.width, config.height
    short = min(w, h)

    # presentation times in seconds, first frame at 0 (start_time is added when writing)
    step = 1.0 / float(config.frame_rate)
    if config.vfr:
        gaps = step * rng.uniform(0.5, 1.5, size=config.frames - 1)
    else:
        gaps = np.full(config.frames - 1, step)
    times = np.concatenate([[0.0], np.cumsum(gaps)])

    radius = _RADIUS * short
    margin = radius * _SCALE_RANGE[1] + 2
    ranges = {"x": (margin, w - margin), "y": (margin, h - margin), "scale": _SCALE_RANGE}
    tracks = {}
    for prop in ("x", "y", "scale"):
        lo, hi = ranges[prop]
        travel = rng.uniform(*_TRAVEL[prop]) * (hi - lo)
        tracks[prop] = _sample_track(rng, lo, hi, travel, direction if prop == moving else 0)
    turn = rng.uniform(*_TRAVEL["angle"])
    tracks["angle"] = (rng.uniform(0, 2 * math.pi), direction * turn if moving == "angle" else 0.0)

    vertices = int(rng.integers(_VERTICES[0], _VERTICES[1] + 1))
    # vertices spread around the centre with jitter, never a sliver; one "nose" vertex reaches further than all the
    # others, so the shape has no rotational symmetry and its orientation is always visible
    angles = (np.arange(vertices) + rng.uniform(-0.3, 0.3, vertices)) * (2 * math.pi / vertices)
    radii = rng.uniform(0.45, 0.75, vertices)
    radii[0] = 1.0
    # a dark background and an object at least _CONTRAST lighter on average: always visible, always the lighter side
    background = rng.integers(*_BACKGROUND_LEVELS, size=3)
    while True:
        colour = rng.integers(0, 256, size=3)
        if colour.mean() - background.mean() >= _CONTRAST:
            break
    return {
        "index": index,
        "label": label,
        "class": name,
        "times": [round(float(t), 6) for t in times],
        "tracks": {k: [round(float(v0), 4), round(float(dv), 4)] for k, (v0, dv) in tracks.items()},
        "radius": round(radius, 4),
        "shape": [[round(float(a), 4), round(float(r), 4)] for a, r in zip(angles, radii)],
        "object_rgb": [int(c) for c in colour],
        "background_rgb": [int(c) for c in background],
        "texture_seed": int(rng.integers(2**31)),
    }


def object_state(record: dict, frame: int) -> dict[str, float]:
    """x, y (pixels), angle (radians) and scale of the object in ``frame`` of a planned video."""
    times = record["times"]
    t = times[frame] / times[-1]
    return {k: v0 + dv * t for k, (v0, dv) in record["tracks"].items()}


# --- rendering and encoding ---------------------------------------------------------------------------------------


def _background(record: dict, width: int, height: int) -> np.ndarray:
    """A smooth random texture: low-resolution noise around the background colour, upsampled bicubically."""
    rng = np.random.default_rng(record["texture_seed"])
    coarse = np.asarray(record["background_rgb"]) + rng.uniform(-_TEXTURE, _TEXTURE, size=(6, 6, 3))
    small = Image.fromarray(np.clip(coarse, 0, 255).astype(np.uint8))
    return np.asarray(small.resize((width, height), Image.BICUBIC))


def render_frames(record: dict, width: int, height: int) -> Iterator[np.ndarray]:
    """The video's frames, one (H, W, 3) uint8 RGB array at a time (long videos never sit in memory whole)."""
    background = Image.fromarray(_background(record, width, height))
    shape = np.asarray(record["shape"])
    colour = tuple(record["object_rgb"])
    for i in range(len(record["times"])):
        s = object_state(record, i)
        a = shape[:, 0] + s["angle"]
        r = shape[:, 1] * record["radius"] * s["scale"]
        # Vertices on a 1/16-pixel grid: the last bits of cos/sin may differ between processes (SIMD code paths),
        # and must not move an edge pixel.
        xs, ys = (np.round(v * 16) / 16 for v in (s["x"] + r * np.cos(a), s["y"] + r * np.sin(a)))
        points = list(zip(xs.tolist(), ys.tolist()))
        img = background.copy()
        ImageDraw.Draw(img).polygon(points, fill=colour)
        yield np.asarray(img)


def _relative_path(config: SynthConfig, record: dict) -> str:
    name = record["class"]
    number = record["index"] // len(config.classes)
    return f"videos/{name}/{name}_{number:04d}{CODECS[config.codec].suffix}"


def _make_one(args: tuple[SynthConfig, Path, dict]) -> None:
    config, root, record = args
    path = root / _relative_path(config, record)
    if path.exists():  # finished by an earlier, interrupted run of the same config (files appear atomically)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {}
    if config.open_gop:
        options["x264-params"] = f"open-gop=1:keyint={config.gop}:min-keyint={config.gop}:scenecut=0"
    encoding = Encoding(config.codec, config.frame_rate, config.gop, config.bframes, config.pix_fmt, config.rotation,
                        options)
    times = [config.start_time + t for t in record["times"]]
    encode_video(render_frames(record, config.width, config.height), times, path, encoding)


# --- the data set ------------------------------------------------------------------------------------------------


def split_counts(n: int, fractions: tuple[float, float, float]) -> list[int]:
    """How many of a class's ``n`` videos go to train, val and test.

    Largest remainder rounding; then every split with a non-zero fraction gets a video while another split can spare
    one (so a small set still has a validation video per class).
    """
    counts = [math.floor(f * n) for f in fractions]
    by_remainder = sorted(range(3), key=lambda i: (counts[i] - fractions[i] * n, i))
    for i in by_remainder[: n - sum(counts)]:
        counts[i] += 1
    for i in range(3):
        donor = max(range(3), key=lambda j: counts[j])
        if fractions[i] > 0 and counts[i] == 0 and counts[donor] > 1:
            counts[donor] -= 1
            counts[i] += 1
    return counts


def _assign_splits(config: SynthConfig, records: list[dict]) -> None:
    """Stratified split: each class is shuffled (seeded) and cut by :func:`split_counts`."""
    rng = np.random.default_rng([config.seed, 2**32 - 1])
    for label in range(len(config.classes)):
        members = [r for r in records if r["label"] == label]
        n_train, n_val, _ = split_counts(len(members), config.splits)
        for rank, i in enumerate(rng.permutation(len(members))):
            members[i]["split"] = "train" if rank < n_train else "val" if rank < n_train + n_val else "test"


_OUTPUTS = ("videos", "classes.txt", "manifest.jsonl", "synth.json", *(f"{s}.csv" for s in SPLITS))


def _lines(lines: Iterable[str]) -> str:
    return "".join(line + "\n" for line in lines)


def generate(config: SynthConfig, out: str | os.PathLike, num_workers: int = 1, force: bool = False,
             progress: bool = False) -> SynthDataset:
    """Write the data set described by ``config`` under ``out`` and return where it lives.

    Re-running with the same config is cheap: a finished set is left as it is, an interrupted one is completed
    (videos already written are kept). Other settings over an existing set need ``force``. One run at a time writes
    a folder (a second is refused, naming the first).
    """
    root = Path(out)
    with output_lock([root]):
        return _generate(config, root, num_workers, force, progress)


def _generate(config: SynthConfig, root: Path, num_workers: int, force: bool, progress: bool) -> SynthDataset:
    dataset = SynthDataset(root, config.classes)
    if claim(root, "synth.json", config.to_dict(), _OUTPUTS, force, "synthetic data set",
             defaults=SynthConfig().to_dict()):
        return dataset

    records = [plan_video(config, i) for i in range(config.videos_per_class * len(config.classes))]
    _assign_splits(config, records)
    for r in records:
        r["path"] = _relative_path(config, r)

    jobs = [(config, root, r) for r in records]
    from tqdm.auto import tqdm

    with tqdm(total=len(jobs), desc="synth", unit="video", disable=not progress) as bar:
        # Always in worker processes started clean, even for one worker: in a process that has loaded other FFmpeg
        # builds (decord and torchcodec bring their own), the same frames were seen to encode slightly differently.
        with process_pool(max(num_workers, 1)) as pool:
            for _ in pool.map(_make_one, jobs, chunksize=4):
                bar.update()

    write_atomic(dataset.classes_file, _lines(config.classes))
    for split in SPLITS:
        write_atomic(dataset.split_file(split),
                     _lines(f"{r['path']} {r['label']}" for r in records if r["split"] == split))
    write_atomic(dataset.manifest_file, _lines(json.dumps(r, separators=(",", ":")) for r in records))
    write_atomic(root / "synth.json", to_json({"config": config.to_dict(), "complete": True}))
    return dataset
