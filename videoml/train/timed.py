"""Lightning's training loop timed per batch: what ``videoml bench``'s fit_step stage measures (the train step as
``videoml fit`` runs it). Here rather than in the bench, which imports Lightning only through the training layer."""

from __future__ import annotations

import logging
import tempfile
import time
import warnings

import lightning as L
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.utilities.warnings import PossibleUserWarning

from videoml.train.cli import quiet_lightning


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


def fit_batch_times(module: L.LightningModule, loader, batches: int, device, precision: str, sync) -> list[float]:
    """Train ``module`` for ``batches`` batches of ``loader`` on ``device`` at ``precision`` (Lightning's defaults
    otherwise, with a CSV logger; no checkpoints, progress bar or summary): the time the first batch started, then
    the time each batch ended."""
    clock = _BatchClock(sync)
    quiet_lightning()
    lightning_log = logging.getLogger("lightning.pytorch")
    level = lightning_log.level
    lightning_log.setLevel(logging.WARNING)  # its "GPU available: ..." lines: the caller says what ran
    try:
        with tempfile.TemporaryDirectory() as logs, warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=PossibleUserWarning)  # no loader workers: the caller's choice
            trainer = L.Trainer(accelerator=device.type, devices=[device.index or 0] if device.type == "cuda" else 1,
                                precision=precision, max_steps=batches, logger=CSVLogger(logs), callbacks=[clock],
                                default_root_dir=logs, enable_checkpointing=False, enable_progress_bar=False,
                                enable_model_summary=False)
            trainer.fit(module, loader)
    finally:
        lightning_log.setLevel(level)
    return clock.times
