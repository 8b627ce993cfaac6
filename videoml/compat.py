"""The one place that patches around stale third-party packages.

pytorchvideo 0.1.5 (its last release) does ``import torchvision.transforms.functional_tensor``. torchvision 0.17
removed that module; its code lives on, unchanged, as ``torchvision.transforms._functional_tensor``. :func:`install`
registers an import alias from the old name to the new one, so ``import pytorchvideo.transforms`` works.

The alias is a meta-path finder placed *last* on ``sys.meta_path``: it costs nothing at start-up (torchvision is only
imported when something asks for the old name) and it never shadows a torchvision that still ships the old module.
``videoml/__init__.py`` calls :func:`install`, so any ``import videoml...`` comes before pytorchvideo is touched.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

# old module name -> the module that now holds the same code
ALIASES = {
    "torchvision.transforms.functional_tensor": "torchvision.transforms._functional_tensor",
}


class _AliasFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path=None, target=None):
        if fullname in ALIASES:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        # The aliased name binds to the very same module object, so patches and identity checks agree.
        return importlib.import_module(ALIASES[spec.name])

    def exec_module(self, module):
        pass  # already executed under its real name


_FINDER = _AliasFinder()


def install() -> None:
    """Register the aliases (idempotent)."""
    if _FINDER not in sys.meta_path:
        sys.meta_path.append(_FINDER)
