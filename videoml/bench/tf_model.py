"""The TensorFlow side of the model stages: the Keras twin's forward and train step in an execution mode.

Modes: ``eager`` (plain Python calls, no ``tf.function``), ``graph`` (``tf.function``), ``xla`` (``tf.function``
with ``jit_compile=True``): the counterparts of PyTorch eager and ``torch.compile``; ``+bf16`` (``graph+bf16``)
builds the model under Keras' ``mixed_bfloat16`` policy (float32 weights, bfloat16 computation), the counterpart of
PyTorch's bfloat16 autocast. The model is the registry
model's Keras mirror with the weights PyTorch initialises from the same seed, the input the same shape of random
clips (channels-last), the train step the same loss and optimiser rule (cross-entropy, PyTorch's SGD with momentum
0.9). Importing this module loads TensorFlow: run it in its own process (``videoml bench suite`` does).
"""

from __future__ import annotations

import videoml.tf  # noqa: F401  (before keras / tensorflow)

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from videoml.data.transforms import slow_frames  # noqa: E402
from videoml.vocab import tf_mode  # noqa: E402
from videoml.models.registry import model_input  # noqa: E402
from videoml.tf.mirror import build_keras_model  # noqa: E402
from videoml.tf.optim import TorchSGD  # noqa: E402

def compiled(function, mode: str):
    """``function`` as ``mode`` runs it: as is (eager), as a ``tf.function`` (graph), or with XLA (xla)."""
    return function if mode == "eager" else tf.function(function, jit_compile=mode == "xla")


def make_train_step(model: keras.Model, mode: str):
    """``step(video, labels) -> loss``: forward, cross-entropy, backward and PyTorch's SGD rule (momentum 0.9)."""
    optimizer = TorchSGD(1e-3, momentum=0.9)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def train_step(video, labels):
        with tf.GradientTape() as tape:
            loss = loss_fn(labels, tf.cast(model(video, training=True), tf.float32))
        optimizer.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)
        return loss

    return compiled(train_step, mode)


def tf_steps(name: str, mode: str, batch_size: int, classes: int, seed: int = 0, threads: int | None = None):
    """The Keras model and ``{"forward": fn, "train_step": fn}``; each fn returns once its result is computed."""
    mode, precision = tf_mode(mode)
    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
    spec = model_input(name)
    keras.mixed_precision.set_global_policy("mixed_bfloat16" if precision == "bf16" else "float32")
    try:  # the layers keep the policy they are built with
        model = build_keras_model(name, classes, seed=seed)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    generator = tf.random.Generator.from_seed(seed)
    video = generator.normal((batch_size, spec.frames, spec.crop, spec.crop, 3))
    if spec.slowfast_alpha:  # [slow, fast] as the PyTorch side's random_clips gives: the same frames (pack_pathways)
        video = [tf.gather(video, slow_frames(spec.frames, spec.slowfast_alpha).numpy(), axis=1), video]
    labels = generator.uniform((batch_size,), 0, classes, dtype=tf.int32)
    forward = compiled(lambda: model(video, training=False), mode)
    train_step = make_train_step(model, mode)
    # Reading a value back waits for the device, as torch.cuda.synchronize does on the PyTorch side.
    return model, {"forward": lambda: forward().numpy(), "train_step": lambda: train_step(video, labels).numpy()}
