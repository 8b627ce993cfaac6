"""The few Keras layers the mirrors need that Keras lacks.

Padding: PyTorch pads symmetrically by an explicit amount; Keras' ``padding="same"`` pads the extra pixel at the
end only when the stride is 2, which shifts every window. The mirrors therefore pad explicitly and convolve or pool
with ``padding="valid"``. Max pooling pads with -inf, as PyTorch does (``ZeroPadding3D`` pads with 0 only).
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable("videoml")
class Pad3D(keras.layers.Layer):
    """Constant padding of (T, H, W) in a channels-last 5-D tensor, ``(before, after)`` per axis."""

    def __init__(self, padding, value: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.padding = tuple(tuple(int(v) for v in pair) for pair in padding)
        self.value = float(value)

    def call(self, x):
        return ops.pad(x, ((0, 0), *self.padding, (0, 0)), constant_values=self.value)

    def compute_output_shape(self, shape):
        dims = [None if d is None else d + a + b for d, (a, b) in zip(shape[1:4], self.padding)]
        return (shape[0], *dims, shape[4])

    def get_config(self):
        return {**super().get_config(), "padding": self.padding, "value": self.value}


@keras.saving.register_keras_serializable("videoml")
class Normalize(keras.layers.Layer):
    """uint8 clips -> float32 ``(x / 255 - mean) / std`` per channel, on the device (as the PyTorch side does after
    the transfer, :func:`videoml.data.transforms.normalize`)."""

    def __init__(self, mean, std, **kwargs):
        super().__init__(**kwargs)
        self.mean, self.std = tuple(float(v) for v in mean), tuple(float(v) for v in std)

    def call(self, x):
        mean = ops.convert_to_tensor(self.mean, "float32") * 255
        std = ops.convert_to_tensor(self.std, "float32") * 255
        return (ops.cast(x, "float32") - mean) / std

    def compute_output_shape(self, shape):
        return shape

    def get_config(self):
        return {**super().get_config(), "mean": self.mean, "std": self.std}
