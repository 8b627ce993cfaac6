"""``videoml fit|validate|test|predict``: LightningCLI over VideoClassifier and VideoDataModule.

The model's name and input overrides are given once (``model.model``, ``model.input``); the input they make is linked
to the data (``data.spec``);
the class names flow from the data to the model when both are built. ``fit`` ends by testing the best checkpoint
when the data has a test split.
"""

from __future__ import annotations

import signal
import sys
import warnings

from jsonargparse import ArgumentError
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.utilities.exceptions import SIGTERMException

from videoml.data.datamodule import VideoDataModule
from videoml.errors import UsageError, option_error_line
from videoml.models.registry import model_input
from videoml.train.callbacks import RunRecord, Throughput
from videoml.train.module import VideoClassifier


class VideoCLI(LightningCLI):
    def add_arguments_to_parser(self, parser):
        parser.link_arguments(("model.model", "model.input"), "data.spec", compute_fn=model_input)
        parser.link_arguments("data.classes", "model.classes", apply_on="instantiate")
        parser.add_lightning_class_args(Throughput, "throughput")
        parser.add_lightning_class_args(RunRecord, "run_record")

    def after_fit(self):
        """With test data configured, evaluate the best checkpoint on it, as the last step of ``fit``."""
        if "test" in self.datamodule.sources and self.trainer.checkpoint_callback is not None:
            best = self.trainer.checkpoint_callback.best_model_path or None
            self.trainer.test(self.model, datamodule=self.datamodule, ckpt_path=best)


def cli_options() -> dict:
    # exit_on_error=False: a bad option raises (one line, see videoml.cli) instead of printing the whole usage
    return dict(seed_everything_default=0,
                trainer_defaults={"use_distributed_sampler": False, "default_root_dir": "runs"},
                save_config_kwargs={"overwrite": True}, parser_kwargs={"prog": "videoml", "exit_on_error": False})


def build(cli: type[VideoCLI], args: list[str], command: str, **options) -> VideoCLI:
    """``cli`` over the module and the data, reading ``args`` as its command line; a bad option is one line."""
    # LightningCLI reads the command line itself, and warns when it is also given ``args``: it gets them as argv
    saved, sys.argv = sys.argv, [sys.argv[0], *args]
    # The module normalises batches on the device (on_after_batch_transfer) by design; Lightning says so on every run
    warnings.filterwarnings("ignore", message=r".*overridden `on_after_batch_transfer` in `LightningModule`")
    try:
        return cli(VideoClassifier, VideoDataModule, **cli_options(), **options)
    except ArgumentError as e:
        raise UsageError(f"{option_error_line(e)} (see 'videoml {command} --help')") from None
    finally:
        sys.argv = saved


def run(args: list[str]) -> VideoCLI:
    """Run ``videoml fit|validate|test|predict`` with ``args`` (the command first); the finished CLI object."""
    return build(VideoCLI, args, args[0] if args else "fit")


def main(args: list[str]) -> int:
    try:
        run(args)
    except SIGTERMException:  # Lightning stops at the next batch after SIGTERM; last.ckpt has the last epoch
        print("videoml: terminated (resume from the run's last.ckpt with --ckpt_path)", file=sys.stderr)
        return 128 + signal.SIGTERM
    return 0
