"""MixUp and CutMix of training batches, as the published transformer recipes use them (PySlowFast's MViT: MixUp
alpha 0.8, CutMix alpha 1.0, one of the two for every batch, CutMix half the time, label smoothing 0.1).

The mixing is PyTorchVideo's ``MixVideo``: clip ``i`` of a batch is mixed with clip ``B - 1 - i`` (the batch
reversed), MixUp blending whole clips, CutMix pasting one box through every frame, and the targets mixed in the same
proportions (with label smoothing applied to both). Its random draws come from a generator seeded by (seed, epoch,
batch), not from torch's global one, so runs and resumed runs mix alike; the two pathways of a SlowFast clip are
mixed with the same draws. A clip that is padding or unreadable (weight 0) makes its mixed partner weight 0 too.
"""

from __future__ import annotations

import numpy as np
import torch

from videoml.errors import VideomlError


class ClipMixing:
    def __init__(self, num_classes: int, mixup_alpha: float = 0.0, cutmix_alpha: float = 0.0,
                 cutmix_prob: float = 0.5, prob: float = 1.0, label_smoothing: float = 0.0):
        from pytorchvideo.transforms import MixVideo

        if mixup_alpha < 0 or cutmix_alpha < 0 or not (0 <= cutmix_prob <= 1 and 0 <= prob <= 1):
            raise VideomlError(f"model.mixup_alpha and model.cutmix_alpha must be >= 0 and model.cutmix_prob and "
                               f"model.mix_prob in [0, 1], got {mixup_alpha}, {cutmix_alpha}, {cutmix_prob}, {prob}")
        if not (mixup_alpha or cutmix_alpha):
            raise VideomlError("mixing needs model.mixup_alpha or model.cutmix_alpha > 0")
        share = cutmix_prob if mixup_alpha and cutmix_alpha else 1.0 if cutmix_alpha else 0.0
        self.mix = MixVideo(cutmix_prob=share, mixup_alpha=mixup_alpha or 1.0, cutmix_alpha=cutmix_alpha or 1.0,
                            label_smoothing=label_smoothing, num_classes=num_classes)
        self.prob, self.label_smoothing, self.num_classes = prob, label_smoothing, num_classes

    def __call__(self, video, label: torch.Tensor, weight: torch.Tensor, seed: list[int]):
        """(video, targets (B, classes), weight) of a batch: mixed with probability ``prob`` (a batch of one clip
        is left as it is), else the one-hot (smoothed) targets of its labels."""
        rng = np.random.default_rng(seed)
        size = label.shape[0]
        if size < 2 or rng.random() >= self.prob:
            return video, _smoothed(label, self.num_classes, self.label_smoothing), weight
        draws = int(rng.integers(2**63 - 1))
        pathways = video if isinstance(video, list) else [video]
        mixed = []
        for pathway in pathways:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(draws)  # the same lambda, choice and box for every pathway
                clips, targets = self.mix(pathway, label)
            mixed.append(clips)
        return mixed if isinstance(video, list) else mixed[0], targets.float(), weight * weight.flip(0)


def _smoothed(label: torch.Tensor, num_classes: int, smoothing: float) -> torch.Tensor:
    """One-hot targets with label smoothing, as torch's ``cross_entropy(label_smoothing=...)`` defines it."""
    targets = torch.nn.functional.one_hot(label, num_classes).float()
    return targets * (1 - smoothing) + smoothing / num_classes
