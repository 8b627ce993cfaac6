"""Writing files so that a reader, or a run killed half-way, never sees half a file."""

from __future__ import annotations

import os
from pathlib import Path


def write_atomic(path: str | os.PathLike, text: str, errors: str = "strict") -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it over ``path`` (atomic on POSIX)."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.part")
    tmp.write_text(text, errors=errors)
    os.replace(tmp, path)
