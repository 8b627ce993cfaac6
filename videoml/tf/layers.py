"""The few Keras layers the mirrors need that Keras lacks.

Depthwise Conv3D: Keras' ``Conv3D(groups=channels)`` runs through an XLA-compiled grouped convolution on the CPU
(TensorFlow has no grouped Conv3D kernel there), which trains X3D at a few clips/s where PyTorch does 150.
:class:`DepthwiseConv3D` computes the same sum as ``kT`` depthwise 2-D convolutions (one per temporal tap, over
all frames at once) added together, TensorFlow's fast depthwise kernel, with the same weights.

Padding: PyTorch pads symmetrically by an explicit amount; Keras' ``padding="same"`` pads the extra pixel at the
end only when the stride is 2, which shifts every window. The mirrors therefore pad explicitly and convolve or pool
with ``padding="valid"``. Max pooling pads with -inf, as PyTorch does (``ZeroPadding3D`` pads with 0 only).
"""

from __future__ import annotations

import keras
import tensorflow as tf
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


@keras.saving.register_keras_serializable("videoml")
class DepthwiseConv3D(keras.layers.Layer):
    """A depthwise Conv3D (one filter per channel, no bias) on unpadded channels-last input, as ``kT`` depthwise 2-D
    convolutions. ``kernel`` has Keras' ``Conv3D(groups=channels)`` shape (kT, kH, kW, 1, channels)."""

    def __init__(self, kernel_size, strides=(1, 1, 1), **kwargs):
        super().__init__(**kwargs)
        self.kernel_size, self.strides = tuple(int(k) for k in kernel_size), tuple(int(s) for s in strides)

    def build(self, shape):
        self.kernel = self.add_weight(name="kernel", shape=(*self.kernel_size, 1, shape[-1]),
                                      initializer="glorot_uniform")

    def call(self, x):
        kt, kh, kw = self.kernel_size
        st, sh, sw = self.strides
        shape = tf.shape(x)
        batch, frames, height, width, channels = shape[0], shape[1], shape[2], shape[3], x.shape[-1]
        out_frames = (frames - kt) // st + 1
        total = None
        for tap in range(kt):
            window = x[:, tap: tap + (out_frames - 1) * st + 1: st]
            window = tf.reshape(window, (batch * out_frames, height, width, channels))
            kernel = tf.reshape(self.kernel[tap], (kh, kw, channels, 1))
            out = tf.nn.depthwise_conv2d(window, kernel, strides=(1, sh, sw, 1), padding="VALID")
            total = out if total is None else total + out
        out_shape = tf.shape(total)
        return tf.reshape(total, (batch, out_frames, out_shape[1], out_shape[2], channels))

    def compute_output_shape(self, shape):
        dims = [None if d is None else (d - k) // s + 1 for d, k, s in zip(shape[1:4], self.kernel_size,
                                                                             self.strides)]
        return (shape[0], *dims, shape[4])

    def get_config(self):
        return {**super().get_config(), "kernel_size": self.kernel_size, "strides": self.strides}
