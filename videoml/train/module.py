"""The LightningModule: a registry model, the loss and schedule, multi-view evaluation with its per-class report
(``RUN_DIR/report/<stage>``, :mod:`videoml.evaluation`), bad-video accounting."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F

from videoml.data.transforms import normalize, pack_pathways
from videoml.evaluation import ClassReport
from videoml.errors import VideomlError
from videoml.models.optimize import before_compiling
from videoml.models.registry import build_model, model_input
from videoml.models.weights import load_weights
from videoml.models.zoo import weights_path
from videoml.recipe import (average_per_video, check_bad_fraction, layer_decay_groups, lr_factor, report_bad_videos,
                            scaled_lr, top_k_accuracy)
from videoml.runtime import memory_format_for
from videoml.train.mixing import ClipMixing
from videoml.vocab import MemoryFormat, Optimizer, check

log = logging.getLogger("videoml.train")


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
            state dict), or published weights by name (``zoo:x3d_s``, :mod:`videoml.models.zoo`: downloaded once,
            verified); a classifier of another class count is replaced by a new one.
        lr: learning rate for ``lr_base_batch_size`` clips per step; scaled linearly to the real global batch
            (batch size x devices x nodes x gradient accumulation). Without ``lr_base_batch_size``, used as is.
        warmup_epochs: linear warm-up, then cosine decay to zero at the last step (per step).
        memory_format: ``auto`` (default: by device and architecture, measured, see
            :func:`videoml.runtime.memory_format_for`), ``channels_last_3d`` or
            ``contiguous``.
        compile: ``torch.compile`` the model's forward (the state dict keeps its plain names).
        max_bad_fraction: fail the run when more than this fraction of the listed training videos are missing or
            cannot be decoded in an epoch.
        min_eval_fraction: fail validation and testing when fewer than this fraction of the listed videos were
            scored (missing and unreadable ones are not); by default every listed video must be.
        label_smoothing: of the training targets (0.1 in the published transformer recipes).
        mixup_alpha, cutmix_alpha: MixUp / CutMix of training batches with these Beta parameters (0: off; PySlowFast's
            MViT recipe: 0.8 and 1.0), :mod:`videoml.train.mixing`.
        cutmix_prob: with both on, the chance that a batch gets CutMix rather than MixUp (PySlowFast's
            ``SWITCH_PROB``).
        mix_prob: the chance that a batch is mixed at all (PySlowFast's ``MIXUP.PROB``).
        layer_decay: layer-wise learning-rate decay of a transformer's blocks
            (:func:`videoml.recipe.layer_decay_groups`; VideoMAE's fine-tuning: 0.75); 1: every parameter at ``lr``.
        batch_size: training clips a step per process (linked from ``data.batch_size``): ``lr`` scales with the
            global batch.
        seed: with the epoch, step and rank, seeds each batch's MixUp / CutMix draws (linked from ``data.seed``).
        videos: split -> the listed videos (:class:`~videoml.data.datasets.VideoList`; linked from the data when
            both are built, not saved): training counts the missing and unreadable ones against
            ``max_bad_fraction`` and names them, evaluation counts the videos scored against those listed. Without
            it (a Trainer given this module by hand) nothing is counted against the listing.

    Gradient clipping is Lightning's (``trainer.gradient_clip_val``, ``trainer.gradient_clip_algorithm``), drop path
    the architecture's (``model_options: {droppath_rate_block: 0.2}`` for MViT), and an exponential moving average of
    the weights Lightning's ``EMAWeightAveraging`` callback (evaluated with and checkpointed as the averaged
    weights): see ``configs/mvit_b_kinetics400.yaml``.
    """

    def __init__(self, model: str = "x3d_tiny", classes: list[str] | None = None, input: dict | None = None,
                 model_options: dict | None = None, weights: str | None = None, optimizer: Optimizer = "sgd",
                 lr: float = 0.1,
                 lr_base_batch_size: int | None = None, momentum: float = 0.9, nesterov: bool = True,
                 weight_decay: float = 5e-5, warmup_epochs: float = 1.0, label_smoothing: float = 0.0,
                 memory_format: MemoryFormat = "auto", compile: bool = False, max_bad_fraction: float = 0.01,
                 min_eval_fraction: float = 1.0, mixup_alpha: float = 0.0, cutmix_alpha: float = 0.0,
                 cutmix_prob: float = 0.5, mix_prob: float = 1.0, layer_decay: float = 1.0, batch_size: int = 8,
                 seed: int = 0, videos: dict | None = None):
        super().__init__()
        if not classes:
            raise VideomlError("the model needs the class names (linked from the data, or saved in the checkpoint)")
        check(optimizer, Optimizer, "model.optimizer")
        check(memory_format, MemoryFormat, "model.memory_format")
        if not (0 <= max_bad_fraction <= 1 and 0 <= min_eval_fraction <= 1):
            raise VideomlError(f"max_bad_fraction and min_eval_fraction must lie in [0, 1], got {max_bad_fraction} "
                               f"and {min_eval_fraction}")
        self.save_hyperparameters(ignore=["videos"])  # the listing stays with the data
        self.videos = videos or {}
        self.spec = model_input(model, input)
        self.model = build_model(model, len(classes), **(model_options or {}))
        if weights:
            fresh = load_weights(self.model, weights_path(weights))
            if fresh:
                log.info("%s: new classifier for %d classes (%s)", weights, len(classes), ", ".join(fresh))
        self.memory_format = torch.contiguous_format  # set for the device in setup()
        if compile:
            before_compiling()
            self.model.compile()  # in place: the state dict keeps its plain names
        else:  # one clip, for the model summary's sizes and FLOPs per clip (a compiled model would compile for it)
            clip = torch.zeros(1, 3, self.spec.frames, self.spec.crop, self.spec.crop)
            self.example_input_array = (pack_pathways(clip, self.spec.slowfast_alpha),)
        self.mixing = ClipMixing(len(classes), mixup_alpha, cutmix_alpha, cutmix_prob, mix_prob, label_smoothing) \
            if mixup_alpha or cutmix_alpha else None
        self._outputs: list[dict] = []
        self._flagged: dict[str, list[torch.Tensor]] = {"bad": [], "short": []}
        self._clips = self._unreadable = 0

    @property
    def classes(self) -> list[str]:
        return list(self.hparams.classes)

    def setup(self, stage: str) -> None:
        if stage == "fit" and "train" in self.videos:  # missing files alone may already exceed the budget: fail now
            check_bad_fraction([], self.videos["train"], self.hparams.max_bad_fraction)
        device_type = self.trainer.strategy.root_device.type
        self.memory_format = memory_format_for(self.hparams.memory_format, self.model, device_type)
        self.model.to(memory_format=self.memory_format)

    def forward(self, video):
        return self.model(video)

    # --- data on the device ---
    def on_after_batch_transfer(self, batch, dataloader_idx):
        if not hasattr(batch, "video"):  # the model summary's example_input_array: a model input already
            return batch
        return batch._replace(video=normalize(batch.video, self.spec.mean, self.spec.std, self.memory_format))

    # --- training ---
    def training_step(self, batch, batch_idx):
        if self.mixing is not None:
            seed = [self.hparams.seed, self.current_epoch, batch_idx, self.global_rank]
            video, targets, weight = self.mixing(batch.video, batch.label, batch.weight, seed)
            logits = self(video)
            losses = F.cross_entropy(logits, targets.to(logits.dtype), reduction="none")
        else:
            logits, weight = self(batch.video), batch.weight
            losses = F.cross_entropy(logits, batch.label, reduction="none",
                                     label_smoothing=self.hparams.label_smoothing)
        weight = weight.to(logits.dtype)
        loss = (losses * weight).sum() / weight.sum().clamp(min=1)
        counted = batch.weight > 0  # (top-1 of mixed clips: against their own, unmixed label)
        size = int(counted.sum())
        if size:
            correct = (logits[counted].argmax(-1) == batch.label[counted]).float().mean()
            self.log("train/top1", correct, batch_size=size, on_step=False, on_epoch=True, prog_bar=True,
                     sync_dist=True)
        self.log("train/loss", loss, batch_size=max(size, 1), prog_bar=True)
        self.log("train/lr", self.trainer.optimizers[0].param_groups[0]["lr"], batch_size=1)
        for flag, found in self._flagged.items():  # unreadable and shorter-than-a-clip videos, by index
            found.append(batch.video_index[getattr(batch, flag)])
        self._clips += int(counted.sum())
        self._unreadable += int((batch.bad & (batch.repeat == 0)).sum())  # a video's first clip counts it
        if (batch_idx + 1) % self.trainer.log_every_n_steps == 0 and "train" in self.videos:
            self._check_unreadable_so_far()
        return loss

    def _check_unreadable_so_far(self) -> None:
        """Fail as soon as the epoch's unreadable videos (all ranks', a collective call) and the missing ones are over
        ``max_bad_fraction``: a list of 10,000 broken files is refused after a few steps, not after an epoch."""
        count = torch.tensor(float(self._unreadable), device=self.device)
        unreadable = int(self.trainer.strategy.reduce(count, reduce_op="sum"))
        videos = self.videos["train"]
        if unreadable + len(videos.missing) > self.hparams.max_bad_fraction * videos.listed:
            seen = sorted(set(torch.cat(self._flagged["bad"]).tolist()))  # this rank's: the ones the error names
            check_bad_fraction([videos.items[i][0] for i in seen], videos, self.hparams.max_bad_fraction,
                               unreadable=unreadable, when=f"epoch {self.current_epoch}, so far: ")

    def on_train_epoch_start(self):
        self._clips = self._unreadable = 0

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
        videos = self.videos.get("train")
        if videos is None:
            return
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
        video = batch.video
        first = video[0] if isinstance(video, list) else video
        size, crops = first.shape[:2]
        flat = [v.flatten(0, 1) for v in video] if isinstance(video, list) else video.flatten(0, 1)
        probs = self(flat).float().softmax(-1).view(size, crops, -1).mean(1)
        self._outputs.append({"video_index": batch.video_index, "weight": batch.weight, "probs": probs,
                              "label": batch.label, "bad": batch.bad})
        return probs

    def validation_step(self, batch, batch_idx):
        self._eval_step(batch)

    def test_step(self, batch, batch_idx):
        self._eval_step(batch)

    def predict_step(self, batch, batch_idx):
        return {"video_index": batch.video_index, "view": batch.view, "weight": batch.weight,
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
        if not self.trainer.sanity_checking and stage in self.videos:
            self._check_scored(stage, len(videos))
        if len(videos):
            for name, accuracy in top_k_accuracy(probs, labels).items():
                self.log(f"{stage}/{name}", accuracy, batch_size=len(videos), prog_bar=name == "top1",
                         sync_dist=True)
        log_dir = self.trainer.log_dir  # every rank: a collective call under DDP
        if len(videos) and log_dir and self.trainer.is_global_zero and not self.trainer.sanity_checking:
            ClassReport.from_scores(probs, labels, self.classes).write(Path(log_dir) / "report" / stage)

    def _check_scored(self, stage: str, scored: int) -> None:
        """Evaluation counts every listed video: fail when fewer than ``min_eval_fraction`` of them were scored."""
        source = self.videos[stage]
        self.log(f"{stage}/videos_listed", float(source.listed), batch_size=1, sync_dist=True)
        limited = self.trainer.limit_val_batches if stage == "val" else self.trainer.limit_test_batches
        if limited not in (1, 1.0):  # a deliberately partial evaluation (limit_*_batches) is not a loss of videos
            return
        if scored < self.hparams.min_eval_fraction * source.listed:
            first = source.missing[0] if source.missing else None
            raise VideomlError(f"{stage}: scored {scored} of the {source.listed} videos {source.source} lists "
                               f"({len(source.missing)} missing or empty{f', first: {first}' if first else ''}; "
                               f"{len(source) - scored} unreadable, see the warnings), below "
                               f"model.min_eval_fraction={self.hparams.min_eval_fraction:g}")

    def on_validation_epoch_end(self):
        self._log_eval("val")

    def on_test_epoch_end(self):
        self._log_eval("test")

    # --- optimisation ---
    def effective_lr(self) -> float:
        trainer = self.trainer
        global_batch = self.hparams.batch_size * trainer.world_size * trainer.accumulate_grad_batches
        return scaled_lr(self.hparams.lr, self.hparams.lr_base_batch_size, global_batch)

    def configure_optimizers(self):
        hp = self.hparams
        lr = self.effective_lr()
        params = layer_decay_groups(self.model.named_parameters(), lr, hp.layer_decay) if hp.layer_decay != 1 else \
            self.parameters()
        if hp.optimizer == "adamw":
            optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=hp.weight_decay)
        else:
            optimizer = torch.optim.SGD(params, lr=lr, momentum=hp.momentum, nesterov=hp.nesterov,
                                        weight_decay=hp.weight_decay)
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        per_epoch = total / max(self.trainer.max_epochs or 1, 1)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, hp.warmup_epochs,
                                                                                        per_epoch, total))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
