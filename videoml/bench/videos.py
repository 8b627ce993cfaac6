"""The benchmark videos: one recipe (web-like H.264), the named sets the suite's cells read, made once under the
suite's ``data`` folder and kept, and their prepared encodings.

Sets (:data:`VIDEO_SETS`):

- ``web``: ``videos`` 10-s 320x240 H.264 at 30 fps, a key frame every 2 s, B-frames (what the decode, pipeline and
  infer stages read);
- ``short``, ``long``: 18 videos of ``reading.short_seconds`` and one of ``reading.long_seconds`` of the same recipe
  (the reading stages: random_clip, open_random_clip, test_views, memory);
- ``real``: the conformance corpus's real files that every backend measured reads with random access;
- ``synth``: the demo's own encoding (``videoml data synth`` defaults: 128x128, 48 frames at 16 fps, GOP 16,
  B-frames), trained with x3d_tiny;
- ``kinetics_like``: 10-s H.264 at 30 fps, GOP 250 with B-frames (YouTube-like: a key frame every ~8 s), half at
  340x256 (Kinetics' smallest common size) and half at 640x360, trained with X3D-S.

Encodings (:data:`ENCODINGS`): ``original``, and ``videoml data prepare`` with its defaults at the largest training
scale of the models that read the set (``prepared``) or with one default undone (``prepared-no_bframes``,
``prepared-no_fastdecode``, ``prepared-gop1``: every frame a key frame), to show what each default is worth.
"""

from __future__ import annotations

import os
from pathlib import Path

from videoml.data.prepare import PrepareConfig
from videoml.data.synth import SynthConfig, generate
from videoml.vocab import Backend, choices

VIDEO_SETS = ("web", "short", "long", "real", "synth", "kinetics_like")
TRAIN_SETS = {"synth": "x3d_tiny", "kinetics_like": "x3d_s"}  # a training set -> the model it is read for
# encoding -> the settings that differ from PrepareConfig's defaults (None: not prepared)
VARIANTS = {"original": None, "prepared": {}, "prepared-no_bframes": {"bframes": 0},
            "prepared-no_fastdecode": {"tune": None}, "prepared-gop1": {"gop": 1}}
ENCODINGS = tuple(VARIANTS)


def web_videos(seconds: int, classes: tuple[str, ...] = SynthConfig().classes, per_class: int = 1) -> SynthConfig:
    """The benchmark videos' recipe: H.264 like web video, 320x240, 30 fps, a key frame every 2 s, B-frames."""
    return SynthConfig(classes=classes, videos_per_class=per_class, frames=30 * seconds, fps="30", width=320,
                       height=240, gop=60, bframes=2, seed=0)


def make_videos(root: Path, config: SynthConfig) -> list[Path]:
    """The videos of ``config`` under ``root``, made once (kept when already there)."""
    dataset = generate(config, root, num_workers=min(os.cpu_count() or 1, 8), progress=True)
    return [dataset.root / r["path"] for r in dataset.manifest()]


def ten_second_videos(folder: str | os.PathLike, count: int) -> tuple[Path, list[Path]]:
    """``count`` 10-second :func:`web_videos`, made once under ``folder/suite-<made>x10s`` (every class alike, so a
    few more may be made): that folder, and the videos."""
    kinds = len(web_videos(10).classes)
    per_class = -(-count // kinds)
    root = Path(folder) / f"suite-{per_class * kinds}x10s"
    return root, make_videos(root, web_videos(10, per_class=per_class))[:count]


def _prepared(paths: list[Path], base: Path, short_side: int, encoding: str) -> list[Path]:
    """``paths`` prepared as ``encoding`` says, once, under ``<base>-prepared-s<short_side>[-<setting>]``; their
    listing is written beside that folder."""
    from videoml.data.prepare import prepare

    settings = VARIANTS[encoding]
    tag = "".join(f"-{k}{v}" for k, v in settings.items())
    root = base.with_name(f"{base.name}-prepared-s{short_side}{tag}")
    listing = root.with_name(root.name + ".csv")
    listing.write_text("".join(f"{p.resolve()} 0\n" for p in paths))
    summary = prepare(listing, root, PrepareConfig(short_side=short_side, **settings),
                      num_workers=min(os.cpu_count() or 1, 8))
    return [summary.root / r["path"] for r in summary.records]


def _train_set(data: Path, name: str, videos_per_class: int, seconds: int, seed: int) -> tuple[Path, list[Path]]:
    """The originals of a training set: ``synth``, ``videos_per_class`` of each of its 6 classes; ``kinetics_like``,
    a quarter as many ``seconds``-long videos of 3 classes at each of two sizes."""
    kinetics = dict(classes=("move_right", "grow", "move_up"), videos_per_class=max(videos_per_class // 4, 1),
                    frames=30 * seconds, fps="30", gop=250, bframes=3, seed=seed)
    parts = [SynthConfig(videos_per_class=videos_per_class, seed=seed)] if name == "synth" else \
        [SynthConfig(width=340, height=256, **kinetics), SynthConfig(width=640, height=360, **kinetics)]
    paths = []
    for part in parts:
        paths += make_videos(data / f"train-{name}-{part.width}x{part.height}-{part.videos_per_class}x"
                                    f"{part.frames}", part)
    return data / f"train-{name}-{len(paths)}x{parts[0].frames}", paths


def real_files(backends: list[str]) -> list[Path]:
    """Corpus files that every backend reads with random access (none when the corpus cannot be fetched here)."""
    from videoml.data.corpus import corpus
    from videoml.data.decoding import open_video
    from videoml.errors import VideoDecodeError, VideomlError

    try:
        files = corpus()
    except VideomlError:
        return []
    usable = []
    for path in files:
        try:
            for backend in backends:  # some backends refuse a file only when they read it
                with open_video(path, backend) as video:
                    readable = video.index.numbering != "sequential"
                    video.get_frames([0, video.num_frames // 2, video.num_frames - 1]).data
        except VideoDecodeError:
            continue
        if readable:
            usable.append(path)
    return usable


def video_sets(config, names: set[str]) -> dict[str, dict[str, list[str]]]:
    """set -> encoding -> video paths, for the sets ``names`` of the suite ``config``, each made (and prepared in
    ``config.encodings``) once."""
    from videoml.data.decoding import backend_available
    from videoml.models.registry import model_input

    data, reading, sets = Path(config.data), config.reading, {}
    for name in names:
        if name == "web":
            base, paths = ten_second_videos(data, config.videos)
        elif name in TRAIN_SETS:
            base, paths = _train_set(data, name, reading.train_videos_per_class, reading.train_seconds, config.seed)
        elif name == "real":
            base, paths = None, real_files([b for b in reading.backends if b in choices(Backend) and backend_available(b)])
        else:
            seconds = reading.short_seconds if name == "short" else reading.long_seconds
            base = data / f"{name}-{seconds}s"
            paths = make_videos(base, web_videos(seconds, ("move_right", "grow")) if name == "long" else
                                web_videos(seconds, per_class=3))[: 1 if name == "long" else None]
        sets[name] = {"original": [str(p) for p in paths]}
        if name in ("web", *TRAIN_SETS):
            models = [TRAIN_SETS[name]] if name in TRAIN_SETS else config.models
            short = max(model_input(m).train_scale[1] for m in models)
            sets[name].update({e: [str(p) for p in _prepared(paths, base, short, e)]
                               for e in config.encodings if e != "original"})
    return sets
