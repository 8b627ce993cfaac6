"""Keras mirrors of the registry's PyTorchVideo models, layer for layer, and the weight port between them.

The configuration object of both sides is the PyTorch module the registry builds: :func:`mirror` reads its blocks
(kernel sizes, strides, padding, groups, BatchNorm epsilon and momentum, activations) and lays out the same
computation in Keras, naming every Keras layer after the PyTorch module it mirrors (``blocks.1.res_blocks.0.
branch2.conv_b``), so the weight map is checked by name, one to one.

Mirrored: PyTorchVideo's ``Net`` of ``ResNetBasicStem``, ``ResStage`` / ``ResBlock`` / ``BottleneckBlock``,
``Conv2plus1d``, squeeze-excitation, X3D's ``ProjectedPool`` and ``ResNetBasicHead``: the ResNet-3D family
(slow_r50, c2d_r50, i3d_r50, csn_r101), R(2+1)D and X3D (grouped / depthwise Conv3D, SE, swish), tiny variants
included; and SlowFast's two pathways (``MultiPathWayWithFuse``, the lateral ``FuseFastToSlow`` connections,
``PoolConcatPathway``): slowfast_r50 / r101, whose Keras twin takes ``[slow, fast]`` as the PyTorch model does.
Transformers (MViT) are not mirrored; asking for one is an error.

Exactness (see :mod:`videoml.tf.layers` for padding):
  - layout: Keras runs channels-last, (B, T, H, W, C); the PyTorch side takes (B, C, T, H, W);
  - BatchNorm: the same epsilon, and Keras momentum = 1 - PyTorch momentum (Keras weighs the old statistic, PyTorch
    the new one). PyTorch updates the running variance with the unbiased batch variance, Keras with the biased one:
    the running variances drift apart by a factor n / (n - 1) per update (n = values per channel in the batch, in
    the tens of thousands for video), which does not touch training-mode outputs or gradients;
  - the head's Linear acts on the channels-last features in both (PyTorchVideo permutes to channels-last for it).
"""

from __future__ import annotations

from typing import Callable, Iterator

import keras
import numpy as np
import torch
from torch import nn

from videoml.errors import VideomlError
from videoml.models.registry import build_model, model_entry, model_input
from videoml.models.weights import load_weights
from videoml.tf.layers import DepthwiseConv3D, Pad3D

# Tensors of the PyTorch state dict that have no Keras counterpart, on purpose: BatchNorm's step counter only
# matters for momentum=None (a cumulative average), which no mirrored model uses (checked in _batch_norm).
UNPORTED = ("num_batches_tracked",)

_Mirror = Callable[[nn.Module, object, str], object]
_MIRRORS: dict[type, _Mirror] = {}


def _mirrors(*types: type):
    def register(function: _Mirror) -> _Mirror:
        for t in types:
            _MIRRORS[t] = function
        return function

    return register


def _layer(module: nn.Module | None, x, name: str):
    """``x`` through the Keras mirror of ``module`` (None: unchanged)."""
    if module is None:
        return x
    for kind in type(module).__mro__:
        if kind in _MIRRORS:
            return _MIRRORS[kind](module, x, name)
    raise VideomlError(f"{name or 'the model'}: {type(module).__name__} has no Keras mirror")


def _child(module: nn.Module, x, name: str, *attributes: str):
    for attribute in attributes:
        x = _layer(getattr(module, attribute, None), x, f"{name}.{attribute}" if name else attribute)
    return x


def _triple(value) -> tuple[int, int, int]:
    return tuple(int(v) for v in value) if isinstance(value, (tuple, list)) else (int(value),) * 3


def _pad(x, padding, name: str, value: float = 0.0):
    padding = _triple(padding)
    if not any(padding):
        return x
    return Pad3D([(p, p) for p in padding], value, name=f"{name}.pad")(x)


# --- leaf layers ---------------------------------------------------------------------------------------------------

@_mirrors(nn.Conv3d)
def _conv3d(conv: nn.Conv3d, x, name):
    if isinstance(conv.padding, str) or conv.padding_mode != "zeros":
        raise VideomlError(f"{name}: only explicit zero padding is mirrored, got {conv.padding!r}/{conv.padding_mode}")
    x = _pad(x, conv.padding, name)
    depthwise = conv.groups > 1 and conv.groups == conv.in_channels == conv.out_channels
    if depthwise and conv.bias is None and _triple(conv.dilation) == (1, 1, 1):
        return DepthwiseConv3D(conv.kernel_size, strides=_triple(conv.stride), name=name)(x)
    return keras.layers.Conv3D(conv.out_channels, conv.kernel_size, strides=_triple(conv.stride), padding="valid",
                               dilation_rate=_triple(conv.dilation), groups=conv.groups, use_bias=conv.bias is not None,
                               name=name)(x)


@_mirrors(nn.BatchNorm3d)
def _batch_norm(norm: nn.BatchNorm3d, x, name):
    if norm.momentum is None or not norm.track_running_stats:
        raise VideomlError(f"{name}: BatchNorm without running statistics or with momentum=None is not mirrored")
    return keras.layers.BatchNormalization(axis=-1, epsilon=norm.eps, momentum=1.0 - norm.momentum,
                                           center=norm.affine, scale=norm.affine, name=name)(x)


@_mirrors(nn.Linear)
def _linear(linear: nn.Linear, x, name):
    return keras.layers.Dense(linear.out_features, use_bias=linear.bias is not None, name=name)(x)


@_mirrors(nn.ReLU)
def _relu(_, x, name):
    return keras.layers.ReLU(name=name)(x)


@_mirrors(nn.SiLU)
def _silu(_, x, name):
    return keras.layers.Activation("silu", name=name)(x)


@_mirrors(nn.Sigmoid)
def _sigmoid(_, x, name):
    return keras.layers.Activation("sigmoid", name=name)(x)


@_mirrors(nn.Softmax)
def _softmax(softmax: nn.Softmax, x, name):
    if softmax.dim != 1:  # the channel axis of (B, C, T, H, W)
        raise VideomlError(f"{name}: Softmax over dim {softmax.dim} is not mirrored (only the channel axis)")
    return keras.layers.Softmax(axis=-1, name=name)(x)


@_mirrors(nn.Identity)
def _identity(_, x, name):
    return x


@_mirrors(nn.Dropout)
def _dropout(dropout: nn.Dropout, x, name):
    return keras.layers.Dropout(dropout.p, name=name)(x)


@_mirrors(nn.MaxPool3d)
def _max_pool(pool: nn.MaxPool3d, x, name):
    if pool.ceil_mode or _triple(pool.dilation) != (1, 1, 1):
        raise VideomlError(f"{name}: MaxPool3d with ceil_mode or dilation is not mirrored")
    kernel = _triple(pool.kernel_size)
    x = _pad(x, pool.padding, name, value=-np.inf)
    return keras.layers.MaxPooling3D(kernel, strides=_triple(pool.stride or kernel), padding="valid", name=name)(x)


@_mirrors(nn.AvgPool3d)
def _avg_pool(pool: nn.AvgPool3d, x, name):
    if any(_triple(pool.padding)) or pool.ceil_mode or pool.divisor_override:
        raise VideomlError(f"{name}: AvgPool3d with padding, ceil_mode or a divisor is not mirrored")
    kernel = _triple(pool.kernel_size)
    return keras.layers.AveragePooling3D(kernel, strides=_triple(pool.stride or kernel), padding="valid", name=name)(x)


@_mirrors(nn.AdaptiveAvgPool3d)
def _global_pool(pool: nn.AdaptiveAvgPool3d, x, name):
    if _triple(pool.output_size) != (1, 1, 1):
        raise VideomlError(f"{name}: AdaptiveAvgPool3d to {pool.output_size} is not mirrored (only to 1)")
    return keras.layers.GlobalAveragePooling3D(keepdims=True, name=name)(x)


@_mirrors(nn.Sequential)
def _sequential(sequence: nn.Sequential, x, name):
    return _child(sequence, x, name, *(n for n, _ in sequence.named_children()))


# --- PyTorchVideo blocks -------------------------------------------------------------------------------------------

def _register_pytorchvideo() -> None:
    from fvcore.nn.squeeze_excitation import SqueezeExcitation
    from pytorchvideo.layers.convolutions import Conv2plus1d
    from pytorchvideo.models.head import ResNetBasicHead
    from pytorchvideo.models.net import MultiPathWayWithFuse, Net
    from pytorchvideo.models.slowfast import FuseFastToSlow, PoolConcatPathway
    from pytorchvideo.models.resnet import BottleneckBlock, ResBlock, ResStage, _trivial_sum
    from pytorchvideo.models.stem import ResNetBasicStem
    from pytorchvideo.models.x3d import ProjectedPool

    @_mirrors(Net)
    def _net(net, x, name):
        return _sequential(net.blocks, x, f"{name}.blocks" if name else "blocks")

    @_mirrors(ResStage)
    def _stage(stage, x, name):
        return _sequential(stage.res_blocks, x, f"{name}.res_blocks")

    @_mirrors(ResNetBasicStem)
    def _stem(stem, x, name):
        return _child(stem, x, name, "conv", "norm", "activation", "pool")

    @_mirrors(Conv2plus1d)
    def _conv2plus1d(conv, x, name):
        order = ("conv_xy", "norm", "activation", "conv_t") if conv.conv_xy_first else \
            ("conv_t", "norm", "activation", "conv_xy")
        return _child(conv, x, name, *order)

    def _sums(fusion) -> bool:  # X3D fuses with a lambda, the ResNets with _trivial_sum: both are probed
        a, b = torch.randn(2, 3), torch.randn(2, 3)
        return fusion is _trivial_sum or torch.equal(fusion(a, b), a + b)

    @_mirrors(ResBlock)
    def _res_block(block, x, name):
        if not _sums(block.branch_fusion):
            raise VideomlError(f"{name}: only the summing branch fusion is mirrored")
        shortcut = _child(block, x, name, "branch1_conv", "branch1_norm")
        x = keras.layers.Add(name=f"{name}.add")([shortcut, _child(block, x, name, "branch2")])
        return _child(block, x, name, "activation")

    @_mirrors(BottleneckBlock)
    def _bottleneck(block, x, name):
        return _child(block, x, name, "conv_a", "norm_a", "act_a", "conv_b", "norm_b", "act_b", "conv_c", "norm_c")

    @_mirrors(SqueezeExcitation)
    def _squeeze_excitation(se, x, name):
        if not se.is_3d:
            raise VideomlError(f"{name}: 2-D squeeze-excitation is not mirrored")
        scale = keras.layers.GlobalAveragePooling3D(keepdims=True, name=f"{name}.squeeze")(x)
        scale = _sequential(se.block, scale, f"{name}.block")
        return keras.layers.Multiply(name=f"{name}.excite")([x, scale])

    @_mirrors(ProjectedPool)
    def _projected_pool(pool, x, name):
        return _child(pool, x, name, "pre_conv", "pre_norm", "pre_act", "pool", "post_conv", "post_norm", "post_act")

    @_mirrors(MultiPathWayWithFuse)
    def _multipathway(block, x, name):
        x = [_layer(b, x[i], f"{name}.multipathway_blocks.{i}") for i, b in enumerate(block.multipathway_blocks)]
        return _child(block, x, name, "multipathway_fusion")

    @_mirrors(FuseFastToSlow)
    def _fuse_fast_to_slow(fuse, x, name):
        """The lateral connection: the fast pathway, convolved to the slow one's frame rate, joins its channels."""
        slow, fast = x
        lateral = _child(fuse, fast, name, "conv_fast_to_slow", "norm", "activation")
        return [keras.layers.Concatenate(axis=-1, name=f"{name}.concat")([slow, lateral]), fast]

    @_mirrors(PoolConcatPathway)
    def _pool_concat(pool, x, name):
        if pool.retain_list:
            raise VideomlError(f"{name}: PoolConcatPathway with retain_list is not mirrored")
        pooled = [_layer(p, x[i], f"{name}.pool.{i}") for i, p in enumerate(pool.pool)] if pool.pool else x
        return keras.layers.Concatenate(axis=-1, name=f"{name}.concat")(pooled)

    @_mirrors(ResNetBasicHead)
    def _head(head, x, name):
        x = _child(head, x, name, "pool", "dropout", "proj", "activation", "output_pool")
        return keras.layers.Flatten(name=f"{name}.flatten")(x)


_register_pytorchvideo()


def mirror(model: nn.Module, name: str = "model", synchronized_batchnorm: bool = False,
           pathways: int = 1) -> keras.Model:
    """A Keras model computing what ``model`` computes, on channels-last clips (B, T, H, W, 3), any clip size the
    PyTorch model takes (``pathways=2``: SlowFast's ``[slow, fast]``). Its weights are Keras' initial ones:
    :func:`port_weights` copies the PyTorch ones.

    ``synchronized_batchnorm``: batch statistics over all replicas of a distribution strategy (the counterpart of
    PyTorch's SyncBatchNorm); Keras reads the flag when the layer runs."""
    if pathways == 1:
        clips = keras.Input(shape=(None, None, None, 3), name="clips")
    else:
        clips = [keras.Input(shape=(None, None, None, 3), name=n) for n in ("slow", "fast")[:pathways]]
    twin = keras.Model(clips, _layer(model, clips, ""), name=name)
    for layer in twin.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.synchronized = synchronized_batchnorm
    return twin


def check_mirrored(name: str) -> None:
    """A one-line refusal of a registry model whose family has no Keras mirror: the mirrors are of PyTorchVideo's
    modules; torchvision's video models and Hugging Face's transformers (PyTorch-only in transformers 5) are not
    mirrored (docs/tensorflow.md says what a mirror of a video transformer needs)."""
    family = model_entry(name).family
    if family != "pytorchvideo":
        raise VideomlError(f"{name} is {family}'s; the Keras twin mirrors PyTorchVideo's architectures (see videoml "
                           "models): run it in PyTorch")


def build_keras_model(name: str, num_classes: int, weights: str | None = None, seed: int | None = None,
                      synchronized_batchnorm: bool = False, **options) -> keras.Model:
    """The registry model ``name`` in Keras with the PyTorch side's weights: those of ``weights`` (a checkpoint, as
    :func:`videoml.models.weights.load_weights` reads), else PyTorch's initialisation (seeded by ``seed``), so both
    frameworks start from the same point."""
    check_mirrored(name)
    if seed is not None:
        torch.manual_seed(seed)
    source = build_model(name, num_classes, **options)
    if weights:
        load_weights(source, weights)
    model = mirror(source, name=name, synchronized_batchnorm=synchronized_batchnorm,
                   pathways=2 if model_input(name).slowfast_alpha else 1)
    port_weights(source, model)
    return model


# --- weights -------------------------------------------------------------------------------------------------------

def _kernel(tensor: np.ndarray) -> np.ndarray:
    """PyTorch weight layout -> Keras: Conv3d (O, I/g, kT, kH, kW) -> (kT, kH, kW, I/g, O); Linear (O, I) -> (I, O)."""
    return tensor.transpose(2, 3, 4, 1, 0) if tensor.ndim == 5 else tensor.T


# PyTorch module type -> its tensor name -> (the Keras variable's name, layout change); a depthwise Conv3d's
# DepthwiseConv3D keeps Keras' grouped Conv3D kernel layout, so it ports like any Conv3d.
_VARIABLES = {
    nn.Conv3d: {"weight": ("kernel", _kernel), "bias": ("bias", None)},
    nn.Linear: {"weight": ("kernel", _kernel), "bias": ("bias", None)},
    nn.BatchNorm3d: {"weight": ("gamma", None), "bias": ("beta", None), "running_mean": ("moving_mean", None),
                     "running_var": ("moving_variance", None)},
}


def weight_pairs(torch_model: nn.Module, keras_model: keras.Model) -> Iterator[tuple[str, torch.Tensor, object,
                                                                                      Callable | None]]:
    """(PyTorch name, tensor, Keras variable, layout change) for every tensor of ``torch_model``; raises naming every
    PyTorch tensor without a Keras variable and every Keras variable without a PyTorch tensor."""
    modules = dict(torch_model.named_modules())
    keras_vars = {f"{layer.name}/{v.name}": v for layer in keras_model.layers for v in layer.weights}
    pairs, unmatched, used = [], [], set()
    for key, tensor in torch_model.state_dict().items():
        module_name, _, attribute = key.rpartition(".")
        if attribute in UNPORTED:
            continue
        table = next((t for kind, t in _VARIABLES.items() if isinstance(modules.get(module_name), kind)), {})
        if attribute not in table or f"{module_name}/{table[attribute][0]}" not in keras_vars:
            unmatched.append(key)
            continue
        var_key = f"{module_name}/{table[attribute][0]}"
        if var_key in used:
            raise VideomlError(f"Keras variable {var_key} would be assigned twice")
        used.add(var_key)
        pairs.append((key, tensor, keras_vars[var_key], table[attribute][1]))
    extra = sorted(set(keras_vars) - used)
    if unmatched or extra:
        raise VideomlError(f"the weight map of {keras_model.name} is not one to one: PyTorch tensors without a Keras "
                           f"variable: {unmatched or 'none'}; Keras variables without a PyTorch tensor: "
                           f"{extra or 'none'}")
    return iter(pairs)


def port_weights(torch_model: nn.Module, keras_model: keras.Model) -> int:
    """Copy every PyTorch tensor into its Keras variable, exactly once (see :func:`weight_pairs`); returns how many."""
    count = 0
    for key, tensor, variable, layout in weight_pairs(torch_model, keras_model):
        value = tensor.detach().cpu().float().numpy()
        value = layout(value) if layout else value
        if tuple(variable.shape) != value.shape:
            raise VideomlError(f"{key}: PyTorch {tuple(tensor.shape)} does not fit Keras {variable.path} "
                               f"{tuple(variable.shape)}")
        variable.assign(value)
        count += 1
    return count
