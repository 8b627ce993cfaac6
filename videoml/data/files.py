"""Finding video files: paths, folders (recursive) and glob patterns, expanded in a stable order."""

from __future__ import annotations

import glob
import os
from pathlib import Path

from videoml.errors import VideomlError

VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".ts", ".flv",
                              ".wmv", ".3gp", ".ogv"})


def find_videos(inputs: list[str | os.PathLike]) -> list[Path]:
    """Expand ``inputs``: a file is taken as it is (whatever its extension), a folder gives the video files under
    it (by extension, recursively, sorted), a glob pattern gives its matches. Duplicates are dropped, order kept.

    A path that does not exist and matches nothing is an error naming it.
    """
    found: dict[Path, None] = {}
    for item in inputs:
        text = str(item)
        path = Path(text)
        if path.is_dir():
            for root, dirs, names in os.walk(path):
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
