"""A model's fast inference graph: every BatchNorm folded into the convolution before it, and optionally compiled.

In eval mode a BatchNorm after a convolution is an affine map per channel, which folds exactly into the
convolution's weights and bias: one pass over the activations instead of two. ``torch.fx``'s conv-bn fusion does the
folding on the traced graph (PyTorchVideo's CNNs trace; a model that does not, such as one with data-dependent
control flow, stays as it is). :func:`compiled` adds ``torch.compile`` with the weights frozen. The result is checked
against the eager model on real clips before it is used (see :class:`videoml.infer.predictor.Predictor`).
"""

from __future__ import annotations

import contextlib
import importlib
import logging

from torch import nn

from videoml.errors import first_line

log = logging.getLogger("videoml.models")
# |outputs - float32 model's| <= TOLERANCE x max |float32 model's| on the first batch of real clips: in float32 the
# fast graph only reorders sums; autocast rounds every product as well (bfloat16 moved the four Kinetics models'
# logits by 0.3-0.5 % of the largest, float16 has 3 more bits)
TOLERANCE = {"32-true": 1e-4, "bf16-mixed": 2e-2, "16-mixed": 5e-3}


def fold_batchnorm(model: nn.Module) -> nn.Module | None:
    """``model`` (eval mode) with its BatchNorms folded into the convolutions; None when it has none (transformers
    normalise with LayerNorm, which does not fold) or cannot be traced."""
    from torch.fx.experimental.optimization import fuse

    if not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        return None

    try:
        return fuse(model.eval())
    except Exception as e:  # torch.fx raises many types for code it cannot trace
        log.warning("%s: no fast inference graph (%s: %s); running it as it is", type(model).__name__,
                    type(e).__name__, first_line(e))
        return None


def compiled(model: nn.Module) -> nn.Module:
    """``torch.compile`` for inference with frozen weights: Inductor's ``freezing`` takes the parameters as constants
    (folded into the graph, laid out for the kernels), as PyTorch recommends for CPU inference. The setting is
    Inductor's, process-wide; it applies to graphs compiled under ``torch.no_grad`` / ``inference_mode`` only."""
    import torch._inductor.config

    before_compiling()
    torch._inductor.config.freezing = True
    return torch.compile(model)


def before_compiling() -> None:
    """What every ``torch.compile`` here calls first: ``torch.utils.cpp_extension`` imported with its "No CUDA
    runtime" line hidden (Inductor imports it on a compiled model's first call, where the line would reach the
    user)."""
    with quiet_cpp_extension():
        importlib.import_module("torch.utils.cpp_extension")


@contextlib.contextmanager
def quiet_cpp_extension():
    """Without ``torch.utils.cpp_extension``'s "No CUDA runtime is found" warning, which it logs when first imported on
    a machine without CUDA (AOTInductor imports it to build or load a package; a CPU package needs no CUDA)."""
    logger = logging.getLogger("torch.utils.cpp_extension")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
