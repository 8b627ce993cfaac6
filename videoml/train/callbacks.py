"""Callbacks every run gets: training throughput with the data-wait fraction, a record of the run, and its learning
curves as a picture."""

from __future__ import annotations

import json
import time
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.trainer.states import TrainerFn

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


class LearningCurves(L.Callback):
    """Draws ``curves.png`` in the run directory: per epoch the training loss (the mean of the epoch's steps, this
    rank's) and top-1, and the validation top-1 where the epoch was validated. Redrawn as each epoch's values are in,
    so a stopped run has its curves so far."""

    def __init__(self):
        self.epochs: dict[int, dict[str, float]] = {}
        self._losses: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is not None:
            self._losses.append(float(loss))

    def on_train_epoch_end(self, trainer, pl_module):
        if self._losses:
            self._row(trainer.current_epoch)["train loss"] = sum(self._losses) / len(self._losses)
        self._losses = []

    def on_validation_end(self, trainer, pl_module):
        value = trainer.callback_metrics.get("val/top1")  # this validation's: logged and reduced by now
        if value is not None and not trainer.sanity_checking and trainer.state.fn == TrainerFn.FITTING:
            self._row(trainer.current_epoch)["val top-1"] = float(value)

    def on_train_epoch_start(self, trainer, pl_module):
        self._draw(trainer, trainer.current_epoch - 1)

    def on_train_end(self, trainer, pl_module):
        self._draw(trainer, max(self.epochs, default=-1))

    def _row(self, epoch: int) -> dict[str, float]:
        return self.epochs.setdefault(epoch, {})

    def _draw(self, trainer, finished: int) -> None:
        """With epoch ``finished``'s training top-1 (reduced over the epoch only once it ended), redraw."""
        top1 = trainer.callback_metrics.get("train/top1")
        if finished < 0 or finished not in self.epochs:
            return
        if top1 is not None:
            self._row(finished)["train top-1"] = float(top1)
        log_dir = trainer.log_dir  # every rank: it is a collective call (a broadcast) under DDP
        if trainer.is_global_zero and log_dir:
            plot_curves(self.epochs, Path(log_dir) / "curves.png")


def plot_curves(epochs: dict[int, dict[str, float]], path: Path) -> None:
    """Loss and top-1 per epoch, side by side, as a PNG at ``path`` (written atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    figure, (loss, top1) = plt.subplots(1, 2, figsize=(10, 3.6))
    for axes, names in ((loss, ("train loss",)), (top1, ("train top-1", "val top-1"))):
        for name in names:
            points = sorted((e, row[name]) for e, row in epochs.items() if name in row)
            if points:
                axes.plot(*zip(*points), marker="o", markersize=3, label=name)
        axes.set_xlabel("epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(alpha=0.3)
        axes.legend()
    loss.set_title("training loss")
    top1.set_title("top-1")
    top1.set_ylim(0, 1.02)
    figure.tight_layout()
    partial = path.with_suffix(".part.png")
    figure.savefig(partial, dpi=100)
    plt.close(figure)
    partial.replace(path)
