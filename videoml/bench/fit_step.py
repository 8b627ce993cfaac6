"""The ``fit_step`` model stage: the train step as ``videoml fit`` runs it, so that what the training loop adds to the
bare step (:mod:`videoml.bench.model`'s ``train_step``) is measured rather than guessed. The project's LightningModule
(:class:`~videoml.train.module.VideoClassifier`: its loss, default optimizer (SGD with Nesterov momentum), per-step
schedule and logging) runs in a Lightning Trainer with a CSV logger (:func:`videoml.train.timed.fit_batch_times`), on
batches of uint8 clips collated from memory (no decoding: that is the decode stages') and normalised on the device,
as fit does. ``videoml bench plan`` plans training from it where a results folder has it.

Lightning owns the loop, so it is timed per batch: ``timing.warmup`` batches untimed (at least one: the first
batch's seconds are the cell's start-up), then ``timing.repeats`` rounds of ``timing.steps`` batches.
"""

from __future__ import annotations

import dataclasses

import torch
from torch.utils.data import DataLoader, Dataset

from videoml.bench.measure import Timing
from videoml.bench.model import Mode, random_clips
from videoml.data.clips import Sample
from videoml.models.registry import model_input
from videoml.train.module import VideoClassifier
from videoml.train.timed import fit_batch_times
from videoml.vocab import PRECISION_NAMES


class _SameClip(Dataset):
    """``length`` training samples of one uint8 clip, the labels cycling through ``classes``."""

    def __init__(self, clip, length: int, classes: int):
        self.clip, self.length, self.classes = clip, length, classes

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> Sample:
        return Sample(self.clip, index % self.classes, index, 0, 1.0, False, False)


def fit_step_cell(plan, cell, timing: Timing, emit, device: torch.device, sync) -> None:
    """Time ``cell``'s model through Lightning's training loop at its batch size, in its mode's memory format,
    precision and compile setting."""
    mode = Mode.parse(cell.mode)
    timing = dataclasses.replace(timing, warmup=max(timing.warmup, 1))
    batches = timing.warmup + timing.steps * timing.repeats
    clip = random_clips(model_input(cell.model), 1, dtype=torch.uint8)
    clip = [pathway[0] for pathway in clip] if isinstance(clip, list) else clip[0]
    torch.manual_seed(plan.seed)
    module = VideoClassifier(cell.model, classes=[f"class_{i}" for i in range(plan.classes)], lr=1e-3,
                             memory_format=mode.memory_format, compile=mode.compile, batch_size=cell.batch_size,
                             seed=plan.seed)
    loader = DataLoader(_SameClip(clip, batches * cell.batch_size, plan.classes), batch_size=cell.batch_size)
    times = fit_batch_times(module, loader, batches, device, PRECISION_NAMES[mode.precision], sync)
    starts = range(timing.warmup, batches, timing.steps)  # times[i]: batch i's end (times[0]: the first's start)
    rounds = [(times[s + timing.steps] - times[s]) / timing.steps for s in starts]
    emit(cell, rounds, cell.batch_size, first_call_s=times[1] - times[0])
