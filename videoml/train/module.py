"""The LightningModule: a registry model, the loss and schedule, multi-view evaluation, bad-video accounting."""

from __future__ import annotations

import logging
import math

import lightning as L
import torch
import torch.nn.functional as F
from torchmetrics.functional.classification import multiclass_accuracy

from videoml.data.transforms import normalize
from videoml.errors import VideomlError
from videoml.models.registry import MEMORY_FORMAT_CHOICES, build_model, load_weights, memory_format_for, model_input

log = logging.getLogger("videoml.train")


def report_bad_videos(bad: list[int], videos, max_fraction: float, epoch: int) -> None:
    """Warn about the training videos (indices into ``videos.items``) an epoch skipped; fail the run when they and
    the listed videos missing on disk are more than ``max_fraction`` of the videos listed."""
    paths = [videos.items[i][0] for i in bad]
    if paths:
        names = ", ".join(map(str, paths[:10])) + (" ..." if len(paths) > 10 else "")
        log.warning("epoch %d: %d training video(s) could not be decoded and were skipped: %s", epoch, len(bad), names)
    check_bad_fraction(paths, videos, max_fraction)


def check_bad_fraction(bad: list, videos, max_fraction: float) -> None:
    """Fail when the ``bad`` (unreadable) videos plus the missing ones exceed ``max_fraction`` of those ``videos``
    lists."""
    lost = len(bad) + len(videos.missing)
    fraction = lost / max(videos.listed, 1)
    if fraction > max_fraction:
        shown = [*bad[:5], *videos.missing[:5]]
        names = ", ".join(map(str, shown)) + (" ..." if lost > len(shown) else "")
        raise VideomlError(f"{lost} of {videos.listed} training videos ({fraction:.1%}) could not be decoded "
                           f"({len(bad)}) or are missing ({len(videos.missing)}), over "
                           f"max_bad_fraction={max_fraction:g}: {names}")


def scaled_lr(lr: float, base_batch_size: int | None, global_batch_size: int) -> float:
    """``lr`` given for ``base_batch_size`` clips a step, scaled linearly to the real global batch (as is)."""
    return lr * global_batch_size / base_batch_size if base_batch_size else lr


def lr_factor(step: int, warmup_epochs: float, steps_per_epoch: float, total_steps: int) -> float:
    """The learning rate at ``step`` as a fraction of the peak: linear warm-up over ``warmup_epochs``, then cosine
    decay to zero at ``total_steps``. The TensorFlow twin follows the same function (:mod:`videoml.tf.optim`)."""
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


class VideoClassifier(L.LightningModule):
    """Video classification with a PyTorchVideo architecture from the registry.

    Args:
        model: registry name (``videoml.models.registry.MODELS``).
        classes: class names, in label order (linked from the data; saved in checkpoints).
        input: overrides of the model's canonical input (frames, crop, ...); shared with the data.
        model_options: extra builder arguments (e.g. ``dropout_rate``).
        optimizer: ``sgd`` (momentum, the published video recipes) or ``adamw`` (converges faster from scratch on small
            data, as in the CPU demo).
        weights: a checkpoint to start from (PyTorchVideo model zoo ``.pyth``, a videoml/Lightning ``.ckpt``, or a
            state dict); a classifier of another class count is replaced by a new one.
        lr: learning rate for ``lr_base_batch_size`` clips per step; scaled linearly to the real global batch
            (batch size x devices x nodes x gradient accumulation). Without ``lr_base_batch_size``, used as is.
        warmup_epochs: linear warm-up, then cosine decay to zero at the last step (per step).
        memory_format: ``auto`` (default: by device and architecture, measured, see
            :func:`videoml.models.registry.memory_format_for`), ``channels_last_3d`` or
            ``contiguous``.
        compile: ``torch.compile`` the model's forward (the state dict keeps its plain names).
        max_bad_fraction: fail the run when more than this fraction of the listed training videos are missing or
            cannot be decoded in an epoch.
        min_eval_fraction: fail validation and testing when fewer than this fraction of the listed videos were
            scored (missing and unreadable ones are not); by default every listed video must be.
    """

    def __init__(self, model: str = "x3d_tiny", classes: list[str] | None = None, input: dict | None = None,
                 model_options: dict | None = None, weights: str | None = None, optimizer: str = "sgd",
                 lr: float = 0.1,
                 lr_base_batch_size: int | None = None, momentum: float = 0.9, nesterov: bool = True,
                 weight_decay: float = 5e-5, warmup_epochs: float = 1.0, label_smoothing: float = 0.0,
                 memory_format: str = "auto", compile: bool = False, max_bad_fraction: float = 0.01,
                 min_eval_fraction: float = 1.0):
        super().__init__()
        if not classes:
            raise VideomlError("the model needs the class names (linked from the data, or saved in the checkpoint)")
        if optimizer not in ("sgd", "adamw"):
            raise VideomlError(f"optimizer must be 'sgd' or 'adamw', got {optimizer!r}")
        if not (0 <= max_bad_fraction <= 1 and 0 <= min_eval_fraction <= 1):
            raise VideomlError(f"max_bad_fraction and min_eval_fraction must lie in [0, 1], got {max_bad_fraction} "
                               f"and {min_eval_fraction}")
        if memory_format not in MEMORY_FORMAT_CHOICES:
            raise VideomlError(f"memory_format must be one of {list(MEMORY_FORMAT_CHOICES)}, got {memory_format!r}")
        self.save_hyperparameters()
        self.spec = model_input(model).replace(**(input or {}))
        self.model = build_model(model, len(classes), **(model_options or {}))
        if weights:
            fresh = load_weights(self.model, weights)
            if fresh:
                log.info("%s: new classifier for %d classes (%s)", weights, len(classes), ", ".join(fresh))
        self.memory_format = torch.contiguous_format  # set for the device in setup()
        if compile:
            self.model.compile()  # in place: the state dict keeps its plain names
        self._outputs: list[dict] = []
        self._flagged: dict[str, list[torch.Tensor]] = {"bad": [], "short": []}
        self._clips = 0

    @property
    def classes(self) -> list[str]:
        return list(self.hparams.classes)

    def setup(self, stage: str) -> None:
        sources = self.trainer.datamodule.sources if self.trainer.datamodule is not None else {}
        if stage == "fit" and "train" in sources:  # missing files alone may already exceed the budget: fail now
            check_bad_fraction([], sources["train"], self.hparams.max_bad_fraction)
        device_type = self.trainer.strategy.root_device.type
        self.memory_format = memory_format_for(self.hparams.memory_format, self.model, device_type)
        self.model.to(memory_format=self.memory_format)

    def forward(self, video):
        return self.model(video)

    # --- data on the device ---
    def on_after_batch_transfer(self, batch, dataloader_idx):
        batch["video"] = normalize(batch["video"], self.spec.mean, self.spec.std, self.memory_format)
        return batch

    # --- training ---
    def training_step(self, batch, batch_idx):
        logits = self(batch["video"])
        weight = batch["weight"].to(logits.dtype)
        losses = F.cross_entropy(logits, batch["label"], reduction="none",
                                 label_smoothing=self.hparams.label_smoothing)
        loss = (losses * weight).sum() / weight.sum().clamp(min=1)
        counted = weight > 0
        size = int(counted.sum())
        if size:
            correct = (logits[counted].argmax(-1) == batch["label"][counted]).float().mean()
            self.log("train/top1", correct, batch_size=size, on_step=False, on_epoch=True, prog_bar=True,
                     sync_dist=True)
        self.log("train/loss", loss, batch_size=max(size, 1), prog_bar=True)
        self.log("train/lr", self.trainer.optimizers[0].param_groups[0]["lr"], batch_size=1)
        for flag, found in self._flagged.items():  # unreadable and shorter-than-a-clip videos, by index
            found.append(batch["video_index"][batch[flag]])
        self._clips += int(counted.sum())
        return loss

    def on_train_epoch_start(self):
        self._clips = 0

    def on_train_epoch_end(self):
        clips = torch.tensor([self._clips], device=self.device)
        if self.trainer.world_size > 1:
            clips = self.all_gather(clips).sum()
        # gathered already, the same on every rank (sync_dist only tells Lightning so)
        self.log("train/clips", float(clips.sum()), batch_size=1, sync_dist=True)  # every training video once
        flagged = {}
        for flag, found in self._flagged.items():
            local = torch.cat(found) if found else torch.zeros(0, dtype=torch.long, device=self.device)
            found.clear()
            flagged[flag] = sorted(set(self._gather_ragged(local).tolist()))
            self.log(f"train/{flag}_videos", float(len(flagged[flag])), batch_size=1, sync_dist=True)
        videos = self.trainer.datamodule.sources["train"]
        if flagged["short"]:
            log.warning("epoch %d: %d training video(s) are shorter than a clip and were padded: %s",
                        self.current_epoch, len(flagged["short"]),
                        ", ".join(str(videos.items[i][0]) for i in flagged["short"][:10]))
        report_bad_videos(flagged["bad"], videos, self.hparams.max_bad_fraction, self.current_epoch)

    def _gather_ragged(self, values: torch.Tensor) -> torch.Tensor:
        """Concatenate a 1-D tensor of any length from every rank."""
        if self.trainer.world_size == 1:
            return values
        size = torch.tensor([values.numel()], device=self.device)
        sizes = self.all_gather(size).view(-1)
        padded = torch.zeros(int(sizes.max()), dtype=values.dtype, device=self.device)
        padded[: values.numel()] = values
        gathered = self.all_gather(padded).view(len(sizes), -1)
        return torch.cat([row[:n] for row, n in zip(gathered, sizes.tolist())])

    # --- evaluation: views and crops averaged per video, every video counted once across ranks ---
    def _eval_step(self, batch):
        video = batch["video"]
        first = video[0] if isinstance(video, list) else video
        size, crops = first.shape[:2]
        flat = [v.flatten(0, 1) for v in video] if isinstance(video, list) else video.flatten(0, 1)
        probs = self(flat).float().softmax(-1).view(size, crops, -1).mean(1)
        self._outputs.append({"video_index": batch["video_index"], "weight": batch["weight"], "probs": probs,
                              "label": batch["label"], "bad": batch["bad"]})
        return probs

    def validation_step(self, batch, batch_idx):
        self._eval_step(batch)

    def test_step(self, batch, batch_idx):
        self._eval_step(batch)

    def predict_step(self, batch, batch_idx):
        return {"video_index": batch["video_index"], "view": batch["view"], "weight": batch["weight"],
                "probs": self._eval_step(batch)}

    def video_scores(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(video indices, mean probabilities, labels) of this epoch's evaluation, gathered from every rank,
        padding and unreadable videos left out."""
        out = {k: torch.cat([o[k] for o in self._outputs]) for k in self._outputs[0]}
        self._outputs.clear()
        if self.trainer.world_size > 1:  # shards are padded to equal length: plain all_gather fits
            out = {k: self.all_gather(v).flatten(0, 1) for k, v in out.items()}
        return average_per_video(out["video_index"], out["probs"], out["label"], out["weight"])

    def _log_eval(self, stage: str):
        if not self._outputs:
            return
        videos, probs, labels = self.video_scores()
        # computed from the gathered scores, the same on every rank (sync_dist only tells Lightning so)
        self.log(f"{stage}/videos", float(len(videos)), batch_size=1, sync_dist=True)
        if not self.trainer.sanity_checking:
            self._check_scored(stage, len(videos))
        if len(videos):
            for name, accuracy in top_k_accuracy(probs, labels).items():
                self.log(f"{stage}/{name}", accuracy, batch_size=len(videos), prog_bar=name == "top1",
                         sync_dist=True)

    def _check_scored(self, stage: str, scored: int) -> None:
        """Evaluation counts every listed video: fail when fewer than ``min_eval_fraction`` of them were scored."""
        source = self.trainer.datamodule.sources[stage]
        self.log(f"{stage}/videos_listed", float(source.listed), batch_size=1, sync_dist=True)
        limited = self.trainer.limit_val_batches if stage == "val" else self.trainer.limit_test_batches
        if limited not in (1, 1.0):  # a deliberately partial evaluation (limit_*_batches) is not a loss of videos
            return
        if scored < self.hparams.min_eval_fraction * source.listed:
            first = source.missing[0] if source.missing else None
            raise VideomlError(f"{stage}: scored {scored} of the {source.listed} videos {source.source} lists "
                               f"({len(source.missing)} missing{f', first: {first}' if first else ''}; "
                               f"{len(source) - scored} unreadable, see the warnings), below "
                               f"model.min_eval_fraction={self.hparams.min_eval_fraction:g}")

    def on_validation_epoch_end(self):
        self._log_eval("val")

    def on_test_epoch_end(self):
        self._log_eval("test")

    # --- optimisation ---
    def effective_lr(self) -> float:
        trainer = self.trainer
        global_batch = trainer.datamodule.hparams.batch_size * trainer.world_size * trainer.accumulate_grad_batches
        return scaled_lr(self.hparams.lr, self.hparams.lr_base_batch_size, global_batch)

    def configure_optimizers(self):
        hp = self.hparams
        lr = self.effective_lr()
        if hp.optimizer == "adamw":
            optimizer = torch.optim.AdamW(self.parameters(), lr=lr, weight_decay=hp.weight_decay)
        else:
            optimizer = torch.optim.SGD(self.parameters(), lr=lr, momentum=hp.momentum, nesterov=hp.nesterov,
                                        weight_decay=hp.weight_decay)
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        per_epoch = total / max(self.trainer.max_epochs or 1, 1)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, hp.warmup_epochs,
                                                                                        per_epoch, total))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
