"""A model's embeddings instead of its logits: what ``videoml extract`` writes.

``head`` (the default) is the input of the classifier, the model's final ``Linear`` (S3D's: a pointwise convolution):
the features the class scores are a linear function of (``logits = features @ W.T + b`` at the canonical input).
Where that input still has positions (PyTorchVideo's heads project every (t, h, w) position and pool after the
projection), they are averaged, which commutes with the linear projection. A named block (``blocks.4``, ``s5``; any
name of ``model.named_modules()``) gives its output averaged over time and space (``(N, C, T, H, W) -> (N, C)``;
token sequences ``(N, L, C)`` over tokens; a list of pathways, as SlowFast's blocks give, pooled per pathway and
concatenated).

Forward hooks read the activations as the model computes them: the same forward pass as classification, nothing
re-implemented per architecture.
"""

from __future__ import annotations

import torch
from torch import nn

from videoml.errors import UsageError
from videoml.models.weights import classifier_name

HEAD = "head"


def pooled(value) -> torch.Tensor:
    """An activation averaged to (N, C): see the module doc."""
    if isinstance(value, (list, tuple)):
        return torch.cat([pooled(v) for v in value], dim=1)
    if value.dim() == 2:
        return value
    if value.dim() == 3:  # transformer tokens (N, L, C)
        return value.mean(1)
    return value.flatten(2).mean(2)  # (N, C, ...) feature maps


class FeatureModel(nn.Module):
    """``model`` returning the activations of ``layer`` (see the module doc) instead of its logits."""

    def __init__(self, model: nn.Module, layer: str = HEAD):
        super().__init__()
        self.model, self.layer = model, layer
        modules = dict(model.named_modules())
        if layer == HEAD:
            self._hooked = modules[classifier_name(model)]
            self._hooked.register_forward_pre_hook(self._keep_classifier_input)
        elif layer in modules and layer:
            self._hooked = modules[layer]
            self._hooked.register_forward_hook(self._keep_output)
        else:
            blocks = [n for n in modules if n and n.count(".") < 2]
            raise UsageError(f"{type(model).__name__} has no layer {layer!r} (use {HEAD!r} for the classifier's "
                             f"input, or one of: {', '.join(blocks[:20])}{' ...' if len(blocks) > 20 else ''})")
        self._kept: torch.Tensor | None = None

    def _keep_classifier_input(self, module, args):
        x = args[0]
        if isinstance(module, nn.Conv3d):  # (N, C, T, H, W) into a pointwise classifier (S3D's)
            self._kept = pooled(x)
        else:
            self._kept = x.flatten(1, -2).mean(1) if x.dim() > 2 else x  # (N, ..., C): positions averaged

    def _keep_output(self, module, args, output):
        self._kept = pooled(output)

    def forward(self, video):
        self._kept = None
        self.model(video)
        kept, self._kept = self._kept, None
        return kept
