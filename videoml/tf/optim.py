"""The PyTorch side's optimisers and schedule, in Keras, with PyTorch's update rules.

Keras' own SGD differs from ``torch.optim.SGD`` in two ways that change training: it folds the learning rate into
the momentum buffer (PyTorch applies it after; the two part as soon as the rate changes, i.e. every step of a
warm-up + cosine schedule), and its ``weight_decay`` is decoupled (PyTorch's SGD adds ``wd * w`` to the gradient,
before momentum). Keras' AdamW adds epsilon to sqrt(v) before the bias correction, PyTorch after it: in the first
steps Keras' epsilon is ~30x larger, which changes the update of every weight whose gradient is near epsilon (a
measured 80 % of the step's size for some tensors). :class:`TorchSGD` and :class:`TorchAdamW` are PyTorch's rules.

The schedule is :func:`videoml.recipe.lr_factor` itself, tabulated per step, so both frameworks follow one
formula.
"""

from __future__ import annotations

import keras
from keras import ops

from videoml.errors import VideomlError
from videoml.recipe import lr_factor


@keras.saving.register_keras_serializable("videoml")
class TorchSGD(keras.optimizers.Optimizer):
    """SGD with PyTorch's semantics: ``g += wd * w; buf = momentum * buf + g; w -= lr * (g + momentum * buf if
    nesterov else buf)``."""

    def __init__(self, learning_rate=0.01, momentum: float = 0.9, nesterov: bool = False, weight_decay: float = 0.0,
                 name: str = "torch_sgd", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.momentum, self.nesterov, self.decay = float(momentum), bool(nesterov), float(weight_decay)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.buffers = [self.add_variable_from_reference(v, "momentum_buffer") for v in variables]

    def update_step(self, gradient, variable, learning_rate):
        lr = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        if self.decay:
            gradient = gradient + self.decay * variable
        if self.momentum:
            buffer = self.buffers[self._get_variable_index(variable)]
            self.assign(buffer, self.momentum * buffer + gradient)
            gradient = gradient + self.momentum * buffer if self.nesterov else buffer
        self.assign_sub(variable, lr * gradient)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov,
                "weight_decay": self.decay}


@keras.saving.register_keras_serializable("videoml")
class TorchAdamW(keras.optimizers.Optimizer):
    """AdamW with PyTorch's semantics: ``w *= 1 - lr * wd``, then ``w -= lr * m_hat / (sqrt(v_hat) + eps)``."""

    def __init__(self, learning_rate=0.001, beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-8,
                 weight_decay: float = 0.01, name: str = "torch_adamw", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.beta_1, self.beta_2, self.epsilon, self.decay = float(beta_1), float(beta_2), float(epsilon), \
            float(weight_decay)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.first = [self.add_variable_from_reference(v, "exp_avg") for v in variables]
        self.second = [self.add_variable_from_reference(v, "exp_avg_sq") for v in variables]

    def update_step(self, gradient, variable, learning_rate):
        lr = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        step = ops.cast(self.iterations + 1, variable.dtype)
        index = self._get_variable_index(variable)
        m, v = self.first[index], self.second[index]
        self.assign(variable, variable * (1 - lr * self.decay))
        self.assign(m, self.beta_1 * m + (1 - self.beta_1) * gradient)
        self.assign(v, self.beta_2 * v + (1 - self.beta_2) * ops.square(gradient))
        correction1 = 1 - ops.power(self.beta_1, step)
        correction2 = 1 - ops.power(self.beta_2, step)
        self.assign_sub(variable, lr / correction1 * m / (ops.sqrt(v / correction2) + self.epsilon))

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon,
                "weight_decay": self.decay}


@keras.saving.register_keras_serializable("videoml")
class TabulatedSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """A learning rate per step from a table (the last value after its end)."""

    def __init__(self, rates):
        self.rates = [float(r) for r in rates]

    def __call__(self, step):
        table = ops.convert_to_tensor(self.rates, "float32")
        return ops.take(table, ops.minimum(ops.cast(step, "int32"), len(self.rates) - 1))

    def get_config(self):
        return {"rates": self.rates}


def warmup_cosine(peak_lr: float, warmup_epochs: float, steps_per_epoch: int, epochs: int) -> TabulatedSchedule:
    total = max(steps_per_epoch * epochs, 1)
    return TabulatedSchedule([peak_lr * lr_factor(s, warmup_epochs, steps_per_epoch, total) for s in range(total)])


def make_optimizer(kind: str, learning_rate, momentum: float = 0.9, nesterov: bool = True,
                   weight_decay: float = 0.0, clip_value: float | None = None,
                   clip_algorithm: str | None = None) -> keras.optimizers.Optimizer:
    """The optimiser ``VideoClassifier`` configures for ``kind`` (``sgd`` or ``adamw``), in Keras, with Lightning's
    gradient clipping (``trainer.gradient_clip_val``): ``norm`` (the default, ``torch.nn.utils.clip_grad_norm_`` over
    all parameters) is Keras' ``global_clipnorm``, ``value`` its ``clipvalue``."""
    if clip_algorithm not in (None, "norm", "value"):
        raise VideomlError(f"trainer.gradient_clip_algorithm must be 'norm' or 'value', got {clip_algorithm!r}")
    clip = {} if not clip_value else {"clipvalue": clip_value} if clip_algorithm == "value" else \
        {"global_clipnorm": clip_value}
    if kind == "sgd":
        return TorchSGD(learning_rate, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay, **clip)
    if kind == "adamw":
        return TorchAdamW(learning_rate, weight_decay=weight_decay, **clip)
    raise VideomlError(f"optimizer must be 'sgd' or 'adamw', got {kind!r}")
