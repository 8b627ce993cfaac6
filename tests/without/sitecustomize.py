"""Runs the suite as on a machine where some optional packages are not installed: with this folder on PYTHONPATH,
``import NAME`` raises ModuleNotFoundError for every NAME in ``VIDEOML_WITHOUT`` (comma-separated), in the test
process and in every process it starts. `.ci/run` runs the decoding and command-line tests so, without decord.
"""

import importlib.abc
import os
import sys

_HIDDEN = {name for name in os.environ.get("VIDEOML_WITHOUT", "").split(",") if name}


class _NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in _HIDDEN:
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None


if _HIDDEN:
    sys.meta_path.insert(0, _NotInstalled())
