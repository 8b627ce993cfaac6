import importlib.util

import pytest

# The TensorFlow twin's tests need the [tf] extra (part of [dev]); without it they are skipped, not failed.
# videoml.tf is imported before anything loads TensorFlow or Keras (see videoml/tf/__init__.py).
if importlib.util.find_spec("tensorflow") is None:
    pytest.skip("TensorFlow is not installed (the [tf] extra)", allow_module_level=True)
import videoml.tf  # noqa: E402,F401
