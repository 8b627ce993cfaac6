"""videoml: video understanding on PyTorchVideo — decoding, clip sampling, training, inference, benchmarks.

The Python API (``videoml.open_video``, ``list_models``, ``create_model``, ``load_model``, ``fit``) lives in
:mod:`videoml.api` and is loaded on first use, so that ``import videoml`` stays cheap.
"""

import time
from importlib import metadata

STARTED = time.monotonic()  # (about) when the process started: commands report their wall time from here

from videoml import compat  # noqa: E402

compat.install()

__version__ = metadata.version("videoml")  # pyproject.toml's, the one place it is written

__all__ = ["FitResult", "Model", "Prediction", "create_model", "fit", "list_models", "load_model", "open_video"]


def __getattr__(name: str):
    if name in __all__:
        from videoml import api

        return getattr(api, name)
    raise AttributeError(f"module 'videoml' has no attribute {name!r}")
