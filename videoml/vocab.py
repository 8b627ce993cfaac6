"""Every closed set of choices the project offers, defined once as a ``Literal`` (the CLI's choices, config
validation and the code's checks all read these), and the one check that refuses a value outside a set."""

from __future__ import annotations

from typing import Literal, get_args

from videoml.errors import UsageError

Backend = Literal["pyav", "decord", "torchcodec"]  # video decoders (:func:`videoml.open_video`; plus "auto" there)
# float32, or autocast to bfloat16 / float16: Lightning's spelling (``trainer.precision``), so that training and
# inference take the same values
Precision = Literal["32-true", "bf16-mixed", "16-mixed"]
# inference's: one of those, or "auto" (by device and model file, :func:`videoml.runtime.inference_precision`)
InferPrecision = Literal["auto", "32-true", "bf16-mixed", "16-mixed"]
# the short names (bench modes are written with them: ``cl3d+bf16``; ``--precision`` took them before)
PRECISION_NAMES = {"fp32": "32-true", "bf16": "bf16-mixed", "fp16": "16-mixed"}
MemoryFormat = Literal["auto", "channels_last_3d", "contiguous"]  # "auto": by device and architecture
TFMode = Literal["eager", "graph", "xla"]  # no tf.function, tf.function, tf.function(jit_compile=True)
TFPrecision = Literal["fp32", "bf16"]  # a TensorFlow bench mode's precision: float32, or Keras' mixed_bfloat16 policy
Aggregate = Literal["mean", "max", "mean-logits"]  # clip scores -> a video's: mean / max of softmax, mean logits
Optimizer = Literal["sgd", "adamw"]
Engine = Literal["local", "ray"]  # where infer and extract run: this machine, or a Ray cluster
FeatureFormat = Literal["npy", "hdf5"]  # extract: an array per video (and an index), or also one HDF5 file
ExportFormat = Literal["torchscript-trace", "torchscript-script", "pt2", "onnx", "aoti"]  # what ``videoml export`` writes
DEFAULT_OPSET = 18  # the ONNX opset ``videoml export`` writes unless asked for another
Framework = Literal["torch", "tf"]  # the two sides of a benchmark suite
# what a benchmark suite measures: a model's steps (fit_step: the train step as ``videoml fit`` runs it); reading (one
# training sample; one from videos kept decoded in memory; uint8 -> normalised; host -> device); the loader feeding
# training; reading clips (:mod:`videoml.bench.reading`); ``videoml infer``
ModelStage = Literal["forward", "train_step", "fit_step"]
ReadingStage = Literal["random_clip", "open_random_clip", "test_views", "memory"]
BenchStage = Literal[ModelStage, "decode", "decode_cached", "transform", "h2d", "pipeline", ReadingStage, "infer"]
# the infer stage's cells: the model alone (folded graph, eager), videoml infer (local, Ray), PyTorchVideo's loop
InferStage = Literal["model_only", "model_only_eager", "videoml_infer", "videoml_infer_ray", "pytorchvideo_loop"]


def choices(vocabulary) -> tuple[str, ...]:
    """The values of a ``Literal`` (nested ones flattened), or of any collection of names (a registry's keys)."""
    values = get_args(vocabulary)
    if not values:
        return tuple(vocabulary)
    return tuple(v for value in values for v in (choices(value) if get_args(value) else (value,)))


def refusal(value, vocabulary, what: str, where: str = "") -> str | None:
    """What :func:`check` says of ``value`` (or each of a list of values) outside ``vocabulary`` (:func:`choices`):
    one line naming ``what`` (and ``where``, a file or option, when given), the values not known and the known ones;
    None when every value is known. (For checks that gather several problems.)"""
    known = choices(vocabulary)
    several = isinstance(value, (list, tuple))
    unknown = [v for v in (value if several else [value]) if v not in known]
    if not unknown:
        return None
    return f"{where + ': ' if where else ''}unknown {what} {unknown if several else repr(value)} " \
           f"(known: {', '.join(map(str, known))})"


def tf_mode(text: str) -> tuple[str, str]:
    """A TensorFlow bench mode, ``graph`` or ``graph+bf16``: (its :data:`TFMode`, its :data:`TFPrecision`)."""
    execution, *rest = text.split("+")
    if len(rest) > 1:
        raise UsageError(f"TensorFlow mode {text!r}: an execution and at most one precision (e.g. graph+bf16)")
    return check(execution, TFMode, "tf mode", where=text), check(rest[0] if rest else "fp32", TFPrecision,
                                                                    "tf precision", where=text)


def check(value, vocabulary, what: str, error: type[Exception] = UsageError, where: str = ""):
    """``value`` when it (or each of a list of values) is one of ``vocabulary``'s; otherwise ``error`` with the
    :func:`refusal` line."""
    line = refusal(value, vocabulary, what, where)
    if line:
        raise error(line)
    return value
