"""The help of the commands whose parser takes seconds to build, kept once built.

``videoml fit|validate|test|predict --help`` and ``videoml tf fit --help`` come from LightningCLI, which builds its
parser from the signatures of the model, the data and Lightning's Trainer, so it imports torch and Lightning first
(some 6 s here). The text depends only on the code, so it is kept in ``<cache>/help/`` (:func:`default_cache_dir`)
under a key of the command, the terminal's width and what makes the text: videoml's own sources (by size and
modification time) and the versions of the libraries whose signatures it shows. A changed source or library builds it
anew: the first ``--help`` after an install or an edit takes the seconds, later ones print the kept text at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import shutil
import sys
from importlib import metadata
from pathlib import Path
from typing import Callable

from videoml.fileio import default_cache_dir, write_atomic

LIBRARIES = ("lightning", "jsonargparse", "pytorchvideo", "torch", "tensorflow-cpu", "tensorflow")


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "-"


def help_key(words: list[str]) -> str:
    """What the help of ``videoml WORDS --help`` depends on, as a digest."""
    digest = hashlib.sha256(repr((words, shutil.get_terminal_size().columns)).encode())
    package = Path(__file__).parent
    for source in sorted(package.rglob("*.py")):
        stat = source.stat()
        digest.update(f"{source.relative_to(package)} {stat.st_size} {stat.st_mtime_ns}\n".encode())
    digest.update(repr([_version(name) for name in LIBRARIES]).encode())
    return digest.hexdigest()[:32]


def kept_help(words: list[str], build: Callable[[], object]) -> int:
    """Print the help of ``videoml WORDS --help``: the kept text, or else what ``build()`` prints (it exits, as
    argparse's help does), kept for the next time. Exit status 0."""
    path = default_cache_dir() / "help" / f"{help_key(words)}.txt"
    try:
        text = path.read_text()
    except OSError:
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            try:
                build()
            except SystemExit as e:
                if e.code not in (0, None):
                    raise
        text = printed.getvalue()
        with contextlib.suppress(OSError):  # a read-only cache only costs the seconds again
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, text)
    sys.stdout.write(text)
    return 0
