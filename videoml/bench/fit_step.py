"""The ``fit_step`` model stage: the train step as ``videoml fit`` runs it, so that what the training loop adds to the
bare step (:mod:`videoml.bench.model`'s ``train_step``) is measured rather than guessed. The project's LightningModule
(:class:`~videoml.train.module.VideoClassifier`: its loss, default optimizer (SGD with Nesterov momentum), per-step
schedule and logging) runs in a Lightning Trainer with a CSV logger, on batches of uint8 clips collated from memory
(no decoding: that is the decode stages') and normalised on the device, as fit does. ``videoml bench plan`` plans
training from it where a results folder has it.

Lightning owns the loop, so a callback times it per batch: ``timing.warmup`` batches untimed, then ``timing.repeats``
rounds of ``timing.steps`` batches; the first batch's seconds are the cell's start-up.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
import time
import warnings

import lightning as L
import torch
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.utilities.warnings import PossibleUserWarning
from torch.utils.data import DataLoader, Dataset

from videoml.bench.measure import Timing
from videoml.bench.model import Mode, random_clips
from videoml.data.clips import Sample
from videoml.models.registry import model_input
from videoml.train.cli import quiet_lightning
from videoml.train.module import VideoClassifier
from videoml.vocab import PRECISION_NAMES


class _SameClip(Dataset):
    """``length`` training samples of one uint8 clip, the labels cycling through ``classes``."""

    def __init__(self, clip, length: int, classes: int):
        self.clip, self.length, self.classes = clip, length, classes

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> Sample:
        return Sample(self.clip, index % self.classes, index, 0, 1.0, False, False)


class _BatchClock(L.Callback):
    """The time the first batch started and each batch ended (the device synchronised)."""

    def __init__(self, sync):
        self.sync, self.times = sync, []

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if not self.times:
            self.times.append(time.perf_counter())

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.sync()
        self.times.append(time.perf_counter())

    def rounds(self, timing: Timing) -> list[float]:
        """Seconds per batch of each timed round."""
        starts = range(timing.warmup, timing.warmup + timing.steps * timing.repeats, timing.steps)
        return [(self.times[s + timing.steps] - self.times[s]) / timing.steps for s in starts]


def fit_step_cell(plan, cell, timing: Timing, emit, device: torch.device, sync) -> None:
    """Time ``cell``'s model through Lightning's training loop at its batch size, in its mode's memory format,
    precision and compile setting."""
    mode = Mode.parse(cell.mode)
    batches = max(timing.warmup, 1) + timing.steps * timing.repeats
    timing = dataclasses.replace(timing, warmup=max(timing.warmup, 1))  # the first batch is start-up
    clip = random_clips(model_input(cell.model), 1, dtype=torch.uint8)
    clip = [pathway[0] for pathway in clip] if isinstance(clip, list) else clip[0]
    torch.manual_seed(plan.seed)
    module = VideoClassifier(cell.model, classes=[f"class_{i}" for i in range(plan.classes)], lr=1e-3,
                             memory_format=mode.memory_format, compile=mode.compile, batch_size=cell.batch_size,
                             seed=plan.seed)
    clock = _BatchClock(sync)
    loader = DataLoader(_SameClip(clip, batches * cell.batch_size, plan.classes), batch_size=cell.batch_size)
    quiet_lightning()
    lightning_log = logging.getLogger("lightning.pytorch")
    level = lightning_log.level
    lightning_log.setLevel(logging.WARNING)  # its "GPU available: ..." lines: the cell's line says what ran
    try:
        with tempfile.TemporaryDirectory() as logs, warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=PossibleUserWarning)  # no loader workers: deliberate here
            trainer = L.Trainer(accelerator=device.type, devices=[device.index or 0] if device.type == "cuda" else 1,
                                precision=PRECISION_NAMES[mode.precision], max_steps=batches, logger=CSVLogger(logs),
                                callbacks=[clock], default_root_dir=logs, enable_checkpointing=False,
                                enable_progress_bar=False, enable_model_summary=False)
            trainer.fit(module, loader)
    finally:
        lightning_log.setLevel(level)
    emit(cell, clock.rounds(timing), cell.batch_size, first_call_s=clock.times[1] - clock.times[0])
