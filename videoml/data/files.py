"""Finding video files: paths, folders (recursive) and glob patterns, expanded in a stable order."""

from __future__ import annotations

import glob
import os
from pathlib import Path

from videoml.errors import UsageError, VideomlError


def job_part(text: str) -> tuple[int, int]:
    """``I/N`` -> (I, N), 0 <= I < N: which of N parts of a list a job of an array takes (``--part`` of infer,
    extract and data shard)."""
    index, _, count = text.partition("/")
    if not (index.isdigit() and count.isdigit() and int(index) < int(count)):
        raise UsageError(f"--part must be I/N with 0 <= I < N (e.g. 0/4), got {text!r}")
    return int(index), int(count)


# The file name extensions a folder scan takes, by the FFmpeg demuxer that reads them. Demuxers that declare
# extensions (libavformat's ``extensions``, ``av.ContainerFormat(name).extensions``) give theirs, less those of audio
# and still images they share (m4a, mka, heic, avif, ...); demuxers that find their files by probing declare none
# (mpeg, mpegts, mpegvideo, asf, rm, mxf, gif's animations), and theirs are the extensions FFmpeg's muxers of the
# format write. A file named otherwise is still read when given by name. docs/decoding.md lists them.
VIDEO_DEMUXERS: dict[str, tuple[str, ...]] = {
    "mov,mp4,m4a,3gp,3g2,mj2": (".mp4", ".m4v", ".mov", ".3gp", ".3g2", ".mj2", ".f4v"),
    "matroska,webm": (".mkv", ".webm", ".mk3d"),
    "avi": (".avi",),
    "mpeg": (".mpg", ".mpeg", ".vob"),  # MPEG program streams (DVD, VCD)
    "mpegts": (".ts", ".m2ts", ".mts", ".m2t"),  # transport streams (broadcast, AVCHD camcorders)
    "mpegvideo": (".m1v", ".m2v", ".mpv"),  # MPEG-1/2 elementary streams
    "h264": (".h264", ".264"),
    "hevc": (".hevc", ".265"),
    "asf": (".wmv", ".asf"),
    "flv": (".flv",),
    "ogg": (".ogv",),
    "gif": (".gif",),  # animated; a one-picture GIF is refused as an image
    "yuv4mpegpipe": (".y4m",),
    "rm": (".rm", ".rmvb"),
    "mxf": (".mxf",),
    "nut": (".nut",),
    "ivf": (".ivf",),
    "mjpeg": (".mjpeg", ".mjpg"),
    "dv": (".dv", ".dif"),
}
VIDEO_EXTENSIONS = frozenset(ext for extensions in VIDEO_DEMUXERS.values() for ext in extensions)


def find_videos(inputs: list[str | os.PathLike]) -> list[Path]:
    """Expand ``inputs``: a file is taken as it is (whatever its extension), a folder gives the video files under
    it (by extension, recursively, sorted), a glob pattern gives its matches. Duplicates are dropped, order kept.

    A path that does not exist and matches nothing is an error naming it. A folder under a given one that cannot be
    listed (no permission, a path over PATH_MAX) is given as itself, where the walk met it: what reads it then says
    why it holds no video it can read (``check_file``), in its place.
    """
    found: dict[Path, None] = {}
    for item in inputs:
        text = str(item)
        path = Path(text)
        if path.is_dir():
            for root, dirs, names in os.walk(path, onerror=lambda e: found.setdefault(Path(e.filename))):
                dirs.sort()
                for name in sorted(names):
                    if Path(name).suffix.lower() in VIDEO_EXTENSIONS:
                        found.setdefault(Path(root) / name)
        elif path.exists() or not glob.has_magic(text):
            if not path.exists():
                raise VideomlError(f"{text}: no such file or directory")
            found.setdefault(path)
        else:
            matches = sorted(glob.glob(text, recursive=True))
            if not matches:
                raise VideomlError(f"{text}: pattern matches no file")
            for match in matches:
                found.setdefault(Path(match))
    return list(found)
