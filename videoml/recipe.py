"""The training recipe both frameworks follow, in one place and free of Lightning and TensorFlow: the learning-rate
schedule and its scaling with the batch, per-video averaging of evaluation views, top-k accuracy, and the accounting
of training videos that could not be read.

The LightningModule (:mod:`videoml.train.module`) and the Keras twin (:mod:`videoml.tf.fit`) both call these, so the
two frameworks train and evaluate by one set of rules.
"""

from __future__ import annotations

import logging
import math
import re

import torch
from torchmetrics.functional.classification import multiclass_accuracy

from videoml.errors import VideomlError

log = logging.getLogger("videoml.train")


def report_bad_videos(bad: list[int], videos, max_fraction: float, epoch: int) -> None:
    """Warn about the training videos (indices into ``videos.items``) an epoch skipped; fail the run when they and
    the listed videos missing on disk are more than ``max_fraction`` of the videos listed."""
    paths = [videos.items[i][0] for i in bad]
    if paths:
        names = ", ".join(map(str, paths[:10])) + (" ..." if len(paths) > 10 else "")
        log.warning("epoch %d: %d training video(s) could not be decoded and were skipped: %s", epoch, len(bad), names)
    check_bad_fraction(paths, videos, max_fraction)


def check_bad_fraction(bad: list, videos, max_fraction: float, unreadable: int | None = None, when: str = "") -> None:
    """Fail when the ``bad`` (unreadable) videos plus the missing ones exceed ``max_fraction`` of those ``videos``
    lists. ``unreadable``: their number where ``bad`` names only some (those one rank saw); ``when`` leads the
    message."""
    unreadable = len(bad) if unreadable is None else unreadable
    lost = unreadable + len(videos.missing)
    fraction = lost / max(videos.listed, 1)
    if fraction > max_fraction:
        shown = [*bad[:5], *videos.missing[:5]]
        names = ", ".join(map(str, shown)) + (" ..." if lost > len(shown) else "")
        raise VideomlError(f"{when}{lost} of {videos.listed} training videos ({fraction:.1%}) could not be decoded "
                           f"({unreadable}) or are missing or empty ({len(videos.missing)}), over "
                           f"max_bad_fraction={max_fraction:g}: {names}")


def scaled_lr(lr: float, base_batch_size: int | None, global_batch_size: int) -> float:
    """``lr`` given for ``base_batch_size`` clips a step, scaled linearly to the real global batch (as is)."""
    return lr * global_batch_size / base_batch_size if base_batch_size else lr


def layer_decay_groups(named_parameters, lr: float, decay: float) -> list[dict]:
    """Parameter groups for layer-wise learning-rate decay (BEiT's, in VideoMAE's fine-tuning): of a transformer of
    L layers, layer i (0-based) learns at ``lr * decay ** (L - i)``, the embeddings at ``lr * decay ** (L + 1)``, what
    follows the last layer (the final norm, the head) at ``lr``. Layers are found by name, ``...layer.<i>.``, as
    ``transformers`` names its encoders' blocks (VideoMAE, TimeSformer, ViViT)."""
    named = list(named_parameters)
    depth = {n: int(m.group(1)) for n, _ in named if (m := re.search(r"\blayer\.(\d+)\.", n))}
    if not depth:
        raise VideomlError("model.layer_decay needs a transformer whose blocks are named layer.<i> (the hf: models)")
    layers = max(depth.values()) + 1
    groups: dict[int, list] = {}
    for name, parameter in named:
        level = depth[name] + 1 if name in depth else 0 if "embeddings" in name else layers + 1
        groups.setdefault(level, []).append(parameter)
    return [{"params": params, "lr": lr * decay ** (layers + 1 - level)} for level, params in sorted(groups.items())]


def lr_factor(step: int, warmup_epochs: float, steps_per_epoch: float, total_steps: int) -> float:
    """The learning rate at ``step`` as a fraction of the peak: linear warm-up over ``warmup_epochs``, then cosine
    decay to zero at ``total_steps``. """
    warmup = min(int(warmup_epochs * steps_per_epoch), total_steps - 1)
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(total_steps - warmup, 1)
    return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def average_per_video(video_index: torch.Tensor, probs: torch.Tensor, label: torch.Tensor,
                      weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(video indices, mean probabilities, labels) over the evaluation samples (views) of each video; samples of
    weight 0 (padding, unreadable videos) left out. The TensorFlow twin evaluates with the same function."""
    keep = weight > 0
    index, probs, label = video_index[keep], probs[keep], label[keep]
    videos, inverse = torch.unique(index, return_inverse=True)
    sums = torch.zeros(len(videos), probs.shape[1], device=probs.device).index_add_(0, inverse, probs)
    counts = torch.zeros(len(videos), device=probs.device).index_add_(0, inverse, torch.ones_like(inverse,
                                                                                                 dtype=torch.float))
    labels = torch.zeros(len(videos), dtype=label.dtype, device=label.device).scatter_(0, inverse, label)
    return videos, sums / counts[:, None], labels


def top_k_accuracy(probs: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """``{"top1": ..., "top5": ...}`` of video-level scores (torchmetrics; top-k capped at the class count)."""
    classes = probs.shape[1]
    return {f"top{k}": multiclass_accuracy(probs, labels, num_classes=classes, top_k=min(k, classes),
                                           average="micro") for k in (1, 5)}
