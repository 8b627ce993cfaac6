"""videoml: video understanding on PyTorchVideo — decoding, clip sampling, training, inference, benchmarks."""

from videoml import compat

compat.install()

__version__ = "0.1.0"
