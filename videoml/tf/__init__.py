"""The TensorFlow twin of the PyTorch side: Keras 3 mirrors of the registry's models, weight porting, a tf.data
pipeline over the same clips, and ``MirroredStrategy`` training (``videoml tf fit``).

Importable only with the ``[tf]`` extra (``pip install 'videoml[tf]'``); nothing outside this package imports
TensorFlow. Keras runs on its TensorFlow backend here, whatever ``KERAS_BACKEND`` says elsewhere.
"""

from __future__ import annotations

import os

from videoml.errors import VideomlError, install_hint

os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter (oneDNN, CPU features)

# Triton (which torch loads lazily, e.g. through torchvision.ops) crashes the process when it is first loaded after
# TensorFlow's libraries; loading it first is safe.
import torch._dynamo  # noqa: E402,F401

try:
    import keras  # noqa: F401
    import tensorflow  # noqa: F401
except ImportError as e:  # pragma: no cover - depends on the installation
    raise VideomlError(f"the TensorFlow side needs the [tf] extra: {install_hint('tensorflow')} ({e})") from None

# The custom Keras classes saved in .keras files (layers, optimisers, schedule) are registered on import, so that
# keras.saving.load_model reads a run's checkpoints once videoml.tf is imported.
from videoml.tf import layers, optim  # noqa: E402,F401

__all__ = ["data", "fit", "layers", "mirror", "optim"]
