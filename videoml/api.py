"""The Python API: what ``import videoml`` offers (see README, "Python API").

- :func:`open_video`: frame-exact reading (:mod:`videoml.data.decoding`);
- :func:`list_models`, :func:`create_model`: the registry's architectures, with weights from a checkpoint;
- :func:`load_model`: a checkpoint or an exported model, ready for :meth:`Model.predict` on a video file or clips;
- :func:`fit`: ``videoml fit`` from Python, a config path or dict with overrides.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from videoml.data.decoding import open_video
from videoml.errors import VideomlError
from videoml.models.registry import build_model, list_models
from videoml.vocab import Aggregate, Backend, MemoryFormat, Precision

__all__ = ["FitResult", "Model", "Prediction", "create_model", "fit", "list_models", "load_model", "open_video"]


def create_model(name: str, num_classes: int, weights: str | os.PathLike | None = None, **options) -> nn.Module:
    """A registry model returning logits of ``num_classes`` classes; ``weights``: a checkpoint to start from (a
    PyTorchVideo model-zoo file, a ``videoml fit`` checkpoint, a state dict, or published weights by name,
    ``zoo:x3d_s``; a classifier of another class count stays newly initialised). ``options`` go to the architecture's
    builder (e.g. ``dropout_rate``)."""
    from videoml.models.weights import load_weights
    from videoml.models.zoo import weights_path

    model = build_model(name, num_classes, **options)
    if weights is not None:
        load_weights(model, weights_path(weights))
    return model


@dataclass(frozen=True)
class Prediction:
    """A video's classification: the top label and score, the top-k, every class's score, the clips' logits."""

    label: str
    score: float
    top_k: list[tuple[str, float]]
    scores: np.ndarray  # (classes,), in :attr:`Model.classes` order
    clip_logits: np.ndarray  # (clips, classes): views x crops


class Model:
    """A trained model ready for inference: uint8 clips in, logits out; :meth:`predict` for a whole video."""

    def __init__(self, predictor):
        self.predictor = predictor

    @property
    def classes(self) -> tuple[str, ...]:
        return self.predictor.classes

    @property
    def card(self):
        """The :class:`~videoml.models.weights.ModelCard`: architecture, classes, input, evaluation views."""
        return self.predictor.card

    def __call__(self, clips: torch.Tensor | list[torch.Tensor]) -> torch.Tensor:
        """Logits (float32, CPU) of uint8 clips (B, C, T, H, W) (SlowFast: ``[slow, fast]``), normalised here."""
        return self.predictor(clips)

    def predict(self, video: str | os.PathLike | torch.Tensor | list[torch.Tensor], views: int | None = None,
                crops: int | None = None, top_k: int = 5, aggregate: Aggregate = "mean",
                backend: Backend = "pyav") -> Prediction:
        """Classify a video file (its ``views`` x ``crops`` clips, by default the model's evaluation recipe) or
        clips already made (all taken as one video), scores aggregated as ``videoml infer`` does."""
        from videoml.infer.clips import VideoClips
        from videoml.infer.run import aggregate as combine

        if isinstance(video, (str, os.PathLike)):
            card = self.card
            item = VideoClips([video], card.input, views=views or card.views, crops=crops or card.crops,
                              backend=backend)[0]
            if item.error:
                raise VideomlError(item.error)
            video = item.video
        logits = self(video)
        scores = combine(logits, aggregate)
        values, indices = scores.topk(min(top_k, len(scores)))
        ranked = [(self.classes[i], float(v)) for v, i in zip(values, indices.tolist())]
        return Prediction(ranked[0][0], ranked[0][1], ranked, scores.numpy(), logits.numpy())


def load_model(path: str | os.PathLike, device: str = "cpu", precision: Precision = "32-true",
               memory_format: MemoryFormat = "auto") -> Model:
    """A ``videoml fit`` checkpoint (.ckpt), a ``videoml export`` file (.ts, .pt2, .onnx) or published weights
    (``zoo:x3d_s``), ready to predict."""
    from videoml.infer.predictor import load_predictor

    return Model(load_predictor(path, device, precision, memory_format))


@dataclass(frozen=True)
class FitResult:
    run_dir: Path  # the logger's run directory (config, metrics, checkpoints)
    best_checkpoint: Path | None  # by the monitored metric; else the last checkpoint written, if any
    metrics: dict[str, float]  # the last logged value of every metric (test/* after the final test)


def fit(config: str | os.PathLike | dict, **overrides) -> FitResult:
    """Train as ``videoml fit --config CONFIG`` does (and test the best checkpoint when there is test data).

    ``config``: a YAML file or the same as a dict. ``overrides``: per section (``trainer={"max_epochs": 2}``) or
    dotted (``**{"model.lr": 0.01}``), applied on top, as ``--section.key VALUE`` on the command line.
    """
    from videoml.train.cli import run

    args = ["fit", "--config", json.dumps(config) if isinstance(config, dict) else str(config)]
    for key, value in overrides.items():
        items = value.items() if isinstance(value, dict) and "." not in key else [(None, value)]
        for name, leaf in items:
            args += [f"--{key}.{name}" if name else f"--{key}", json.dumps(leaf)]
    cli = run(args)
    trainer = cli.trainer
    callback = trainer.checkpoint_callback
    best = (callback.best_model_path or callback.last_model_path) if callback is not None else None
    return FitResult(Path(trainer.log_dir or trainer.default_root_dir), Path(best) if best else None,
                     {k: float(v) for k, v in trainer.callback_metrics.items()})
