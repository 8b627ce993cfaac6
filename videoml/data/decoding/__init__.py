"""Decoding: one interface over PyAV, decord and torchcodec, with frame-exact indexing.

    with open_video("clip.mp4", backend="pyav") as video:
        frames = video.get_frames([0, 8, 16, 24], size=128)   # .data: uint8 (T, H, W, 3), RGB, short side 128; .pts_seconds

Frame ``i`` means the same picture in every backend: the ``i``-th picture FFmpeg's decoder outputs for the file
(its :class:`FrameIndex`: built from the packets, verified by decoding, cached).
"""

from __future__ import annotations

import importlib
import os

from typing import TYPE_CHECKING

from videoml.data.decoding.index import FrameIndex, Source, VideoBytes, build_index, load_index
from videoml.errors import UsageError, VideoDecodeError
from videoml.fileio import default_cache_dir
from videoml.vocab import Backend, check, choices

if TYPE_CHECKING:
    from videoml.data.decoding.reader import VideoReader

# the reader's names, imported on first use: the reader needs torch, which a command's --help, the index and the
# checks of options do not (see __getattr__)
_FROM_READER = ("BAD_FRAME_POLICIES", "FrameBatch", "VideoReader", "output_size")

# backend name -> (module, class); modules are imported on first use, so a missing optional backend costs nothing
BACKENDS = dict(zip(choices(Backend), (("videoml.data.decoding.pyav_reader", "PyAVReader"),
                                        ("videoml.data.decoding.decord_reader", "DecordReader"),
                                        ("videoml.data.decoding.torchcodec_reader", "TorchCodecReader"))))
AUTO_ORDER = ("pyav", "decord")  # "auto": the first that opens the file
# What to install for an optional backend
INSTALL = {"decord": "pip install 'videoml[decord]'",
           "torchcodec": "pip install 'videoml[torchcodec]', with FFmpeg's shared libraries (Debian: apt install "
                         "ffmpeg)"}


def _reader_class(name: str):
    """The reader class of backend ``name``; a UsageError saying what to install when it does not import here."""
    check(name, BACKENDS, "backend", ValueError)  # (open_video also takes "auto")
    module, cls = BACKENDS[name]
    try:
        return getattr(importlib.import_module(module), cls)
    except (ImportError, OSError, RuntimeError) as e:
        raise UsageError(f"the {name} backend is not available here ({e}): {INSTALL.get(name, 'reinstall videoml')}"
                         ) from None


def backend_available(name: str) -> bool:
    """Whether backend ``name`` imports here (decord and torchcodec are optional; torchcodec needs FFmpeg's shared
    libraries)."""
    try:
        require_backend(name)
        return True
    except UsageError:
        return False


def require_backend(name: str) -> None:
    """Nothing when backend ``name`` (or "auto") can be used here, else a UsageError saying what to install: commands
    check their ``--backend`` before they start, not once per video."""
    if name != "auto":
        _reader_class(name)


def open_video(path: Source, backend: str = "pyav", threads: int = 1, bad_frames: str = "error",
               cache_dir: str | os.PathLike | None | bool = None, autorotate: bool = True,
               still_images: bool = False, index: FrameIndex | None = None) -> VideoReader:
    """Open ``path`` (a file, or a :class:`VideoBytes`: a video in memory) for reading frames by index.

    backend:    "pyav", "decord", "torchcodec" or "auto" (PyAV, then decord if PyAV cannot open the file).
    threads:    decoder threads; 1 by default, right inside DataLoader workers (one worker per core).
    bad_frames: "error" (default) or "nearest", see :data:`videoml.data.decoding.reader.BAD_FRAME_POLICIES`.
    cache_dir:  where frame indexes are cached; None = the default, False = no cache.
    autorotate: turn pictures upright by the file's display matrix, as FFmpeg's command line does (default);
                False returns them as stored.
    still_images: read a still image (PNG, JPEG, a one-picture GIF, ...) as a one-frame video instead of refusing it.
    index:      the video's frame index when it is at hand (a shard keeps its samples'), else built or cached.

    Raises VideoDecodeError (naming the file and the cause) for a missing, empty, unreadable file, and for one that
    is not a video: text (FFmpeg's tty demuxer draws any text as pictures), subtitles, audio (with or without cover
    art), a still image (unless ``still_images``).
    """
    if backend == "auto":
        errors = []
        for name in filter(backend_available, AUTO_ORDER):
            try:
                return open_video(path, name, threads, bad_frames, cache_dir, autorotate, still_images, index)
            except VideoDecodeError as e:
                errors.append(f"{name}: {e.reason}")
        raise VideoDecodeError(path, "; ".join(errors))
    reader_class = _reader_class(backend)
    index = index or load_index(path, cache_dir)
    if index.still_image and not still_images:
        raise VideoDecodeError(path, f"an image ({index.still_image}), not a video")
    return reader_class(path, index, threads=threads, bad_frames=bad_frames, autorotate=autorotate)


def __getattr__(name: str):
    if name in _FROM_READER:
        from videoml.data.decoding import reader

        return getattr(reader, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["BACKENDS", "BAD_FRAME_POLICIES", "FrameBatch", "FrameIndex", "VideoBytes", "VideoDecodeError",
           "VideoReader", "backend_available", "build_index", "default_cache_dir", "load_index", "open_video",
           "output_size", "require_backend"]
