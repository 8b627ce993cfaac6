"""``videoml fit|validate|test|predict``: LightningCLI over VideoClassifier and VideoDataModule.

The model's name and input overrides are given once (``model.model``, ``model.input``); the input they make is linked
to the data (``data.spec``). The data's batch size and seed are linked to the model, and its class names and video
listings flow to the model when both are built: the model never reads the data module. ``fit`` ends by testing the best checkpoint
when the data has a test split.
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import sys
import types
import warnings

from jsonargparse import ArgumentError
from lightning.pytorch.cli import LightningCLI

from videoml.data.datamodule import VideoDataModule
from videoml.errors import UsageError, install_hint, missing_package, option_error_line
from videoml.models.registry import model_input
from videoml.processes import Terminated, dead_workers_reported_by_next
from videoml.train.callbacks import LearningCurves, RunRecord, Throughput
from videoml.train.module import VideoClassifier


def _spec_fields(model: str, overrides: dict | None) -> dict:
    """The model's input as the fields of ``data.spec``: jsonargparse keeps (and saves in config.yaml) a dataclass
    option as its fields; an InputSpec instance it warns that it cannot serialise."""
    return dataclasses.asdict(model_input(model, overrides))


class VideoCLI(LightningCLI):
    def subcommands(self) -> dict[str, set[str]]:
        """Only the command being run (``sys.argv[1]``, as :func:`build` sets it) gets a parser: LightningCLI builds
        one for each of its four commands otherwise, a good part of its start-up."""
        every = LightningCLI.subcommands()
        asked = sys.argv[1] if len(sys.argv) > 1 else None
        return {asked: every[asked]} if asked in every else every

    def add_arguments_to_parser(self, parser):
        parser.link_arguments(("model.model", "model.input"), "data.spec", compute_fn=_spec_fields)
        parser.link_arguments("data.classes", "model.classes", apply_on="instantiate")
        parser.link_arguments("data.sources", "model.videos", apply_on="instantiate")  # what accounting counts
        parser.link_arguments("data.batch_size", "model.batch_size", compute_fn=int)  # (a plain int: config.yaml)
        parser.link_arguments("data.seed", "model.seed")
        parser.add_lightning_class_args(Throughput, "throughput")
        parser.add_lightning_class_args(RunRecord, "run_record")
        parser.add_lightning_class_args(LearningCurves, "learning_curves")

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
    quiet_lightning()
    _tensorboard_without_tensorflow()
    try:
        return cli(VideoClassifier, VideoDataModule, **cli_options(), **options)
    except ArgumentError as e:
        raise UsageError(f"{option_error_line(e)} (see 'videoml {command} --help')") from None
    except Exception as e:  # a configured class (a logger) whose package is not installed
        package = missing_package(e)
        if package is None:
            raise
        raise UsageError(f"the configuration needs {package}, which is not installed here: "
                         f"{install_hint(package)}") from None
    finally:
        sys.argv = saved


def _not_a_tip(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith("💡 Tip")


def quiet_lightning() -> None:
    """What Lightning says on every run that is not about the run: the module normalises batches on the device
    (on_after_batch_transfer) by design; its own pytree helper uses what torch deprecated; its tips advertise cloud
    services. (Its own SIGTERM line: see StopSignals.)"""
    warnings.filterwarnings("ignore", message=r".*overridden `on_after_batch_transfer` in `LightningModule`")
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
    tips = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if _not_a_tip not in tips.filters:
        tips.addFilter(_not_a_tip)
    # the line main prints says it; Lightning's own ("[rank: 0] Received SIGTERM: 15") would be a second
    logging.getLogger("lightning.pytorch.trainer.connectors.signal_connector").setLevel(logging.WARNING)


def _tensorboard_without_tensorflow() -> None:
    """TensorBoard's event writer (the recipes' TensorBoardLogger) loads TensorFlow when it is installed, for its
    file I/O (``tensorboard.compat.tf``): seconds of start-up and TensorFlow's log lines on every run, and TensorFlow
    beside torch in one process, which on a GPU wants another CUDA. TensorBoard's own switch is the module
    ``tensorboard.compat.notf``: where it imports, TensorBoard uses its stub, which writes the same event files."""
    sys.modules.setdefault("tensorboard.compat.notf", types.ModuleType("tensorboard.compat.notf"))


def run(args: list[str]) -> VideoCLI:
    """Run ``videoml fit|validate|test|predict`` with ``args`` (the command first); the finished CLI object."""
    return build(VideoCLI, args, args[0] if args else "fit")


def main(args: list[str]) -> int:
    stop = StopSignals()
    try:
        run(args)
    except BaseException as e:
        if stop.signum is None:
            raise
        # Stopped by a signal: Lightning's SIGTERMException at the next batch, or whatever the loader raised first
        # about workers the same signal killed (or a second Ctrl-C). The checkpoint is RunRecord.on_exception's.
        checkpoint = getattr(e, "resume_from", None)
        word = "interrupted" if stop.signum == signal.SIGINT else "terminated"
        print(f"videoml: {word}; " + (f"resume with --ckpt_path {checkpoint}" if checkpoint else
                                      "no checkpoint was written yet"), file=sys.stderr)
        return 128 + stop.signum
    return 0


class StopSignals:
    """SIGTERM and Ctrl-C stop training at the next batch (Lightning's SIGTERM handling, which Ctrl-C is routed to:
    Lightning's own KeyboardInterrupt handling exits 1 naming no checkpoint); the run ends naming the checkpoint to
    resume from. While no trainer runs, or at a second Ctrl-C, they stop at once. ``signum`` is the first one.

    Both reach every process of the run (a terminal, ``timeout`` and scancel signal them all), so the loader workers'
    deaths that follow are expected (:func:`videoml.processes.dead_workers_reported_by_next`).
    """

    def __init__(self):
        self.signum = None
        signal.signal(signal.SIGTERM, self.sigterm)  # Lightning calls it after its own while a trainer runs
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not ignored, as in a background job
            signal.signal(signal.SIGINT, self.sigint)

    def _note(self, signum: int) -> None:
        self.signum = self.signum or signum
        dead_workers_reported_by_next()

    def sigterm(self, signum, frame):
        self._note(signum)
        if signal.getsignal(signal.SIGTERM) == self.sigterm:  # no trainer runs: Lightning's handler is not there
            raise Terminated(128 + signum)

    def sigint(self, signum, frame):
        first = self.signum is None
        self._note(signum)
        lightning = signal.getsignal(signal.SIGTERM)
        if not first or lightning == self.sigterm:
            raise KeyboardInterrupt
        lightning(signal.SIGTERM, frame)
