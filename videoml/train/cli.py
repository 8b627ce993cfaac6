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
from videoml.errors import UsageError, first_line
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


def _cli_options() -> dict:
    # exit_on_error=False: a bad option raises (one line, see videoml.cli) instead of printing the whole usage
    return dict(seed_everything_default=0,
                trainer_defaults={"use_distributed_sampler": False, "default_root_dir": "runs"},
                save_config_kwargs={"overwrite": True}, parser_kwargs={"prog": "videoml", "exit_on_error": False})


def parse_config(args: list[str], extra: type | None = None, shapes: dict | None = None):
    """``videoml fit``'s configuration from ``args`` (``--config FILE``, ``--section.key VALUE``), checked and
    completed by the same parser, links applied, nothing built; ``extra`` (a dataclass) adds top-level options.
    The TensorFlow twin trains from it."""
    from videoml.commands.parser import conventional, normalize, options_of

    class ParseOnly(VideoCLI):
        def add_arguments_to_parser(self, parser):
            super().add_arguments_to_parser(parser)
            if extra is not None:
                parser.add_class_arguments(extra, as_group=False, skip={"progress"})
                conventional(parser, options_of(extra), {}, {}, known)

        def instantiate_classes(self):
            pass

    known: dict = {} if shapes is None else shapes
    if extra is not None:  # the shapes are known once the parser exists: --no-X and comma lists of extra's options
        fields = {f"--{name}": hint for name, (hint, _) in options_of(extra).items()}
        known.update({n: "bool" for n, h in fields.items() if h is bool})
    try:
        cli = ParseOnly(VideoClassifier, VideoDataModule, run=False, args=normalize(args, known), **_cli_options())
    except ArgumentError as e:
        raise UsageError(f"{first_line(e)} (see 'videoml tf fit --help')") from None
    return cli.config


def main(args: list[str]) -> int:
    # LightningCLI reads the command line itself, and warns when it is also given ``args``: it gets them as argv
    saved, sys.argv = sys.argv, [sys.argv[0], *args]
    # The module normalises batches on the device (on_after_batch_transfer) by design; Lightning says so on every run
    warnings.filterwarnings("ignore", message=r".*overridden `on_after_batch_transfer` in `LightningModule`")
    try:
        VideoCLI(VideoClassifier, VideoDataModule, **_cli_options())
    except ArgumentError as e:
        raise UsageError(f"{first_line(e)} (see 'videoml {args[0] if args else 'fit'} --help')") from None
    except SIGTERMException:  # Lightning stops at the next batch after SIGTERM; last.ckpt has the last epoch
        print("videoml: terminated (resume from the run's last.ckpt with --ckpt_path)", file=sys.stderr)
        return 128 + signal.SIGTERM
    finally:
        sys.argv = saved
    return 0
