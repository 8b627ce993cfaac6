"""The LightningDataModule: Lightning's view of a run's clips (:mod:`videoml.data.clips`), sharded across its ranks.

The only data module that imports Lightning: everything about clips is in :mod:`videoml.data.clips`, which the
TensorFlow twin, the benchmarks and the API read as well.
"""

from __future__ import annotations

import lightning as L
from lightning.pytorch.trainer.states import TrainerFn

from videoml.data.clips import SPLITS, ClipData, ClipLoader, ClipOptions
from videoml.spec import InputSpec


class VideoDataModule(L.LightningDataModule):
    """Clip loaders for training, validation, testing and prediction.

    Args:
        spec: the model's input (frames, stride, crop, scales, normalisation), which shapes the clips; on the command
            line it is linked from ``model.model`` and ``model.input`` (the registry's canonical input, overridden).
        train, val, test, predict: data sources, e.g. ``{"kind": "labeled_paths", "path": "data/synth/train.csv"}``
            (``kind`` names a reader in :mod:`videoml.data.datasets`; the other keys are its arguments).
        options: the clip options, :class:`~videoml.data.clips.ClipOptions`' fields (``batch_size``, ``views``,
            ``backend``, ...), given flat: ``data.batch_size``.
    """

    def __init__(self, spec: InputSpec | None = None, train: dict | None = None, val: dict | None = None,
                 test: dict | None = None, predict: dict | None = None, **options):
        super().__init__()
        self.save_hyperparameters(ignore=["spec"])  # checkpoints hold plain values; the model's card has the input
        self.clips = ClipData(spec, dict(zip(SPLITS, (train, val, test, predict))), ClipOptions(**options))

    @property
    def sources(self):
        return self.clips.sources

    @property
    def classes(self) -> list[str]:
        return self.clips.classes

    def _loader(self, name: str) -> ClipLoader:
        trainer = self.trainer
        world, rank = (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)
        return self.clips.loader(name, world, rank)

    def train_dataloader(self):
        return self._loader("train")

    def val_dataloader(self):
        if "val" not in self.sources and self.trainer is not None and self.trainer.state.fn == TrainerFn.FITTING:
            return []  # fit without validation data: Lightning skips validation (``videoml validate`` still needs it)
        return self._loader("val")

    def test_dataloader(self):
        return self._loader("test")

    def predict_dataloader(self):
        return self._loader("predict")
