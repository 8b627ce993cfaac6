"""Callbacks every run gets: training throughput with the data-wait fraction, and a record of the run."""

from __future__ import annotations

import json
import time
from pathlib import Path

import lightning as L
import torch

from videoml.environment import environment


class Throughput(L.Callback):
    """Training clips/s and the fraction of time the loop waited for data (``throughput/data_wait``).

    The progress bar shows the last ``window`` steps of this rank; the logger gets each epoch's totals over all
    ranks. Lightning's ThroughputMonitor counts samples per second but not the wait for the loader, which is what
    tells a user that more workers (or a cheaper decode) would help.
    """

    def __init__(self, window: int = 10):
        self.window = window
        self.epoch = self.recent = None

    def on_train_epoch_start(self, trainer, pl_module):
        self.epoch, self.recent = _Clock(), _Clock()
        self._last_end = time.perf_counter()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self._start = time.perf_counter()
        for clock in (self.epoch, self.recent):
            clock.wait += self._start - self._last_end

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)
        self._last_end = time.perf_counter()
        video = batch.video
        clips = (video[0] if isinstance(video, list) else video).shape[0]
        for clock in (self.epoch, self.recent):
            clock.busy += self._last_end - self._start
            clock.clips += clips
        if (batch_idx + 1) % self.window == 0:
            pl_module.log("clips/s", self.recent.rate, batch_size=1, prog_bar=True, logger=False)
            self.recent = _Clock()

    def on_train_epoch_end(self, trainer, pl_module):
        # all ranks together: the sum of their clips/s, the mean of their wait fractions
        pl_module.log("throughput/clips_per_s", self.epoch.rate, batch_size=1, sync_dist=True, reduce_fx="sum")
        pl_module.log("throughput/data_wait", self.epoch.wait / max(self.epoch.wait + self.epoch.busy, 1e-9),
                      batch_size=1, sync_dist=True)


class _Clock:
    def __init__(self):
        self.wait = self.busy = 0.0
        self.clips = 0

    @property
    def rate(self) -> float:
        return self.clips / max(self.wait + self.busy, 1e-9)


class RunRecord(L.Callback):
    """Writes ``classes.txt`` and ``environment.json`` into the run directory (beside LightningCLI's config.yaml)."""

    def setup(self, trainer, pl_module, stage):
        log_dir = trainer.log_dir  # every rank: it is a collective call (a broadcast) under DDP
        if trainer.global_rank != 0 or log_dir is None:
            return
        run = Path(log_dir)
        run.mkdir(parents=True, exist_ok=True)
        (run / "classes.txt").write_text("".join(f"{c}\n" for c in pl_module.classes))
        (run / "environment.json").write_text(json.dumps({"stage": stage, **environment()}, indent=2) + "\n")

    def on_exception(self, trainer, pl_module, exception):
        """Name, on the exception that stops the run (SIGTERM, Ctrl-C), the newest checkpoint: the one to resume
        from (``videoml.train.cli`` prints it)."""
        written = [p for c in trainer.checkpoint_callbacks if c.dirpath for p in Path(c.dirpath).glob("*.ckpt")]
        if written:
            exception.resume_from = max(written, key=lambda p: p.stat().st_mtime_ns)
