"""Every closed set of choices the project offers, defined once as a ``Literal`` (the CLI's choices, config
validation and the code's checks all read these)."""

from __future__ import annotations

from typing import Literal, get_args

from videoml.errors import UsageError

Backend = Literal["pyav", "decord", "torchcodec"]  # video decoders (:func:`videoml.open_video`; plus "auto" there)
Precision = Literal["fp32", "bf16", "fp16"]  # fp32, or autocast to bf16 / fp16
MemoryFormat = Literal["auto", "channels_last_3d", "contiguous"]  # "auto": by device and architecture
TFMode = Literal["eager", "graph", "xla"]  # no tf.function, tf.function, tf.function(jit_compile=True)
Aggregate = Literal["mean", "max", "mean-logits"]  # clip scores -> a video's: mean / max of softmax, mean logits
Optimizer = Literal["sgd", "adamw"]
Engine = Literal["local", "ray"]  # where infer and extract run: this machine, or a Ray cluster


def choices(vocabulary) -> tuple[str, ...]:
    return get_args(vocabulary)


def check(value: str, vocabulary, what: str) -> str:
    """``value`` if it is one of ``vocabulary``'s; otherwise a one-line :class:`UsageError` naming ``what``."""
    if value not in get_args(vocabulary):
        raise UsageError(f"{what} must be one of {', '.join(get_args(vocabulary))}, got {value!r}")
    return value
