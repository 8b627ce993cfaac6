"""The TensorFlow twin of the PyTorch side: Keras 3 mirrors of the registry's models, weight porting, a tf.data
pipeline over the same clips, and ``MirroredStrategy`` training (``videoml tf fit``).

Importable only with the ``[tf]`` extra (``pip install 'videoml[tf]'``); nothing outside this package imports
TensorFlow. Keras runs on its TensorFlow backend here, whatever ``KERAS_BACKEND`` says elsewhere.
"""

from __future__ import annotations

import os
import sys
import tempfile

from videoml.errors import VideomlError, install_hint

os.environ["KERAS_BACKEND"] = "tensorflow"
if not os.environ.get("VIDEOML_DEBUG"):  # TensorFlow's C++ log lines, as `videoml` sets them (cli.main): its graph
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # optimizer's error-level diagnostics are no failure

# Triton (which torch loads lazily, e.g. through torchvision.ops) crashes the process when it is first loaded after
# TensorFlow's libraries; loading it first is safe.
import torch._dynamo  # noqa: E402,F401


def _import_tensorflow() -> None:
    import keras  # noqa: F401
    import tensorflow  # noqa: F401


def _load_tensorflow() -> None:
    """Import TensorFlow and Keras with the C++ lines TensorFlow writes while loading (absl's "All log messages
    before absl::InitializeLog()" and oneDNN's notice) held back: since TensorFlow 2.17 they ignore
    TF_CPP_MIN_LOG_LEVEL (tensorflow/tensorflow#79029, #100442). They are shown when the import fails, or under
    ``videoml --debug``."""
    if os.environ.get("VIDEOML_DEBUG"):
        return _import_tensorflow()
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            _import_tensorflow()
        except BaseException:
            os.dup2(saved, 2)
            held.seek(0)
            sys.stderr.write(held.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


try:
    _load_tensorflow()
except ImportError as e:  # pragma: no cover - depends on the installation
    raise VideomlError(f"the TensorFlow side needs the [tf] extra: {install_hint('tensorflow')} ({e})") from None

# The custom Keras classes saved in .keras files (layers, optimisers, schedule) are registered on import, so that
# keras.saving.load_model reads a run's checkpoints once videoml.tf is imported.
from videoml.tf import layers, optim  # noqa: E402,F401

__all__ = ["data", "fit", "layers", "mirror", "optim"]
