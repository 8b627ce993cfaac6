"""The one place that patches around stale third-party packages.

pytorchvideo 0.1.5 (its last release) does ``import torchvision.transforms.functional_tensor``. torchvision 0.17
removed that module; its code lives on, unchanged, as ``torchvision.transforms._functional_tensor``. :func:`install`
registers an import alias from the old name to the new one, so ``import pytorchvideo.transforms`` works.

The alias is a meta-path finder placed *last* on ``sys.meta_path``: it costs nothing at start-up (torchvision is only
imported when something asks for the old name) and it never shadows a torchvision that still ships the old module.
``videoml/__init__.py`` calls :func:`install`, so any ``import videoml...`` comes before pytorchvideo is touched.

fvcore (pytorchvideo's dependency) calls ``torch.jit.script`` when ``fvcore.nn.focal_loss`` is imported, and torch
now warns that TorchScript is deprecated: a warning about fvcore's code, printed by every command that builds a
model. :func:`install` also places a finder *first* on ``sys.meta_path`` that answers for that one module only and
runs its import with that one warning ignored; every other import and warning is left as it is.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings

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


# module -> the warning (message regex) its import-time code raises about itself
QUIET_IMPORTS = {
    "fvcore.nn.focal_loss": r"`torch\.jit\.script` is deprecated",
    "pytorchvideo.transforms.transforms": r"`torch\.jit\.script_method` is deprecated",
}


class _QuietFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname not in QUIET_IMPORTS:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader, QUIET_IMPORTS[fullname])
        return spec


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader, message: str):
        self.loader, self.message = loader, message

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=self.message)
            self.loader.exec_module(module)


_FINDER = _AliasFinder()
_QUIET = _QuietFinder()


def install() -> None:
    """Register the aliases and the quiet imports (idempotent)."""
    if _FINDER not in sys.meta_path:
        sys.meta_path.append(_FINDER)
    if _QUIET not in sys.meta_path:
        sys.meta_path.insert(0, _QUIET)
