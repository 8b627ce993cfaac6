"""Output folders of data set makers (``data synth``, ``data prepare``): made once, resumed, never mixed.

A maker records its settings in a state file in the folder, ``complete: false`` until it finishes. Run again with
the same settings, it finds the folder finished (nothing to do) or unfinished (it goes on: files already written
are complete, as they appear atomically). Other settings over an existing set are refused unless forced, which
removes the maker's outputs first; a non-empty folder that is not such a set is refused.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from videoml.errors import VideomlError
from videoml.fileio import write_atomic


def to_json(obj) -> str:
    return json.dumps(obj, indent=2) + "\n"


def claim(root: Path, state_file: str, config: dict, outputs: tuple[str, ...], force: bool, what: str,
          defaults: dict | None = None) -> bool:
    """Make ``root`` ready for the set ``config`` describes; True when it already holds it, finished.

    ``outputs``: the names the maker writes under ``root`` (removed when forced). ``defaults``: settings added since
    older sets were made count as these values. ``what``: the kind of set, for messages."""
    state_path = root / state_file
    if root.exists() and not root.is_dir():
        raise VideomlError(f"{root}: exists and is not a directory")
    if state_path.exists():
        try:
            state = json.loads(state_path.read_text())
            same = {**(defaults or {}), **state["config"]} == config
        except (ValueError, KeyError, TypeError):
            state, same = {}, False
        if same and not force:
            return bool(state.get("complete"))
        if not same and not force:
            raise VideomlError(f"{root}: holds a {what} made with other settings; "
                               "use --force to replace it, or choose another output folder")
    elif root.exists() and any(root.iterdir()) and not force:
        raise VideomlError(f"{root}: directory is not empty and holds no {what}; "
                           "choose an empty or new output folder (or --force to write beside its files)")
    if force:
        for name in outputs:
            target = root / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    root.mkdir(parents=True, exist_ok=True)
    write_atomic(state_path, to_json({"config": config, "complete": False}))
    return False
