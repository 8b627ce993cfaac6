"""The ``videoml`` command: the command line generated (jsonargparse) from the typed functions in
:mod:`videoml.commands`, plus LightningCLI for ``fit|validate|test|predict``. This module only wires.

Every command takes ``--config FILE`` (YAML of its options) and ``--print_config``. Options are spelled with
underscores as in config files (``--num_workers``) or with dashes (``--num-workers``); a bool option given alone is
true (``--force``), ``--no-X`` sets X false; a list option takes YAML (``[a, b]``) or comma-separated values.
"""

from __future__ import annotations

import os
import re
import sys
import traceback

from jsonargparse import ArgumentParser

from videoml import __version__
from videoml.commands.parser import Command, call, check_config_size, command_parser, config_files, normalize
from videoml.errors import UsageError, VideomlError, option_error_line
from videoml.processes import Terminated, stop_on_signals

COMMANDS = {
    "infer": Command("videoml.commands.run:infer", "classify videos with a trained or exported model", ("inputs",),
                     {"model": ("-m",), "out": ("-o",), "devices": ("--device",)}, {"profile": ""}),
    "extract": Command("videoml.commands.run:extract",
                       "embeddings of videos per clip and per video (npy + index, or HDF5)", ("inputs",),
                       {"model": ("-m",), "out": ("-o",), "devices": ("--device",)}, {"profile": ""}),
    "report": Command("videoml.commands.run:report",
                      "per-class top-1 and confusion matrix of a run or an infer --labels output", ("path",)),
    "models": Command("videoml.commands.run:models",
                      "the models, their inputs and the published weights each loads by name", ("pattern",)),
    "export": Command("videoml.commands.run:export",
                      "export a checkpoint to TorchScript, torch.export (.pt2) or ONNX, verified",
                      ("checkpoint",), {"formats": ("-f", "--format"), "out": ("-o",)}),
    "data": {
        "synth": Command("videoml.commands.data:synth", "generate the learnable synthetic motion video data set",
                         aliases={"out": ("-o",)}),
        "check": Command("videoml.commands.data:check", "check that video files decode, and report what they hold",
                         ("paths",), {"out": ("-o",)}),
        "prepare": Command("videoml.commands.data:prepare",
                           "re-encode a data set into a format that is cheap to train from", ("src", "dst")),
        "shard": Command("videoml.commands.data:shard",
                         "pack a prepared data set into shards (tar, WebDataset's layout) with a manifest",
                         ("prepared", "out")),
        "corpus": Command("videoml.commands.data:corpus",
                          "fetch (and cache) the conformance corpus of real and generated videos"),
        "conformance": Command("videoml.commands.data:conformance",
                               "compare every backend's frames with FFmpeg's decoder, file by file", ("paths",)),
    },
    "bench": {
        "decode": Command("videoml.commands.bench:decode", "clip decoding per backend vs FFmpeg's ceiling and "
                          "PyTorchVideo", aliases={"out": ("-o",)}),
        "model": Command("videoml.commands.bench:model", "forward and train-step clips/s per model and execution mode",
                         aliases={"out": ("-o",)}),
        "infer": Command("videoml.commands.bench:infer",
                         "videoml infer vs the PyTorchVideo tutorial loop and vs the model alone",
                         aliases={"out": ("-o",)}),
        "shards": Command("videoml.commands.bench:shards",
                          "training clips/s from files vs shards, local and over HTTP with a per-request latency",
                          ("prepared",), {"out": ("-o",)}),
        "suite": Command("videoml.commands.bench:suite",
                         "a declared matrix: models x frameworks x modes x batch sizes x stages",
                         aliases={"out": ("-o",)}),
        "compare": Command("videoml.commands.bench:compare", "two suite results folders side by side, with ratios",
                           ("a", "b"), {"out": ("-o",)}),
        "plan": Command("videoml.commands.bench:plan",
                        "a capacity plan (epoch time, bound, decoding cores, storage) from measured rates",
                        ("results",), {"out": ("-o",)}),
    },
    "tf": {"fit": None},  # train the Keras twin of a videoml fit config (videoml.commands.tf)
}
LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")  # parsed by LightningCLI (videoml.train.cli)
DEBUG_FLAGS = ("--debug", "-v")
PROFILER = "videoml.train.profiler.TrainingProfiler"


def build_parser() -> ArgumentParser:
    """Every command, for --help."""
    parser = ArgumentParser(prog="videoml", description="Video understanding on PyTorchVideo.", exit_on_error=False,
                            version=f"videoml {__version__}")
    parser.add_argument("--debug", "-v", action="store_true",
                        help="show tracebacks for errors, and the decoding libraries' own log lines")
    _add_commands(parser, "videoml", COMMANDS)
    return parser


GROUPS = {"data": "make and check video data sets", "bench": "benchmarks",
          "tf": "the TensorFlow twin (needs the [tf] extra)"}


def _add_commands(parser, prog: str, table: dict) -> None:
    commands = parser.add_subcommands(title="commands", metavar="COMMAND", required=True)
    for name in LIGHTNING_COMMANDS if prog == "videoml" else ():  # listed for --help; LightningCLI parses them
        commands.add_subcommand(name, ArgumentParser(), help=f"{name} with Lightning: videoml {name} --config "
                                f"configs/....yaml [--profile] (see videoml {name} --help)")
    for name, entry in table.items():
        if isinstance(entry, dict):  # a group: added before its own commands, as jsonargparse wants
            group = ArgumentParser(prog=f"{prog} {name}", exit_on_error=False)
            commands.add_subcommand(name, group, help=GROUPS[name])
            _add_commands(group, f"{prog} {name}", entry)
        elif entry is None:  # parsed elsewhere (videoml tf fit); listed for --help
            commands.add_subcommand(name, ArgumentParser(), help=f"see videoml {prog[8:]} {name} --help")
        else:  # the command's own parser is made when it runs (importing what it needs): a name here
            commands.add_subcommand(name, ArgumentParser(), help=entry.help)


# --- running --------------------------------------------------------------------------------------------------------


def _parse(rest: list[str]) -> tuple[Command, dict]:
    """The command ``rest`` names and its parsed options. The command's own parser reads its options (jsonargparse
    reports errors inside nested subcommands poorly); the whole tree answers --help and misses a command."""
    words, entry = _command(rest)
    if not isinstance(entry, Command):
        build_parser().parse_args(rest)  # prints help and exits, or raises the error
        raise UsageError("expected a command (see 'videoml --help')")
    shapes: dict = {}
    parser = command_parser(f"videoml {' '.join(words)}", entry, shapes)
    try:
        return entry, parser.parse_args(normalize(rest[len(words):], shapes)).as_dict()
    except UsageError:
        raise
    except Exception as e:  # jsonargparse's ArgumentError, or a type's own error while parsing a value
        raise _usage_error(e, rest, shapes) from e


def _bool_value(line: str, argv: list[str], shapes: dict) -> str | None:
    """A word the parser did not take that follows a bool option was meant as its value (``--decoded-cache
    maybe``): what to say instead of jsonargparse's "unrecognized arguments: maybe" (:func:`normalize` reads a bool
    option's next word as its value only when it is one of its true or false words, else as the next argument)."""
    if not line.startswith("unrecognized arguments: "):
        return None
    for word in line.split(": ", 1)[1].split():
        at = argv.index(word) if word in argv else 0
        if at and shapes.get(argv[at - 1]) == "bool":
            return f"{argv[at - 1]} takes true or false (alone: true), not {word!r}"
    return None


def _report(error: Exception, debug: bool) -> int:
    """An error the user can fix: one line (the traceback only with --debug); the exit status."""
    if debug:
        traceback.print_exc()
    print(f"videoml: error: {error}", file=sys.stderr)
    return getattr(error, "exit_code", 1)


def _command(argv: list[str]) -> tuple[list[str], Command | dict]:
    """The leading words of ``argv`` that name a command or group, and what they name."""
    words, entry = [], COMMANDS
    for word in argv:
        if not isinstance(entry, dict) or word not in entry:
            break
        words.append(word)
        entry = entry[word]
    return words, entry


def _usage_error(error: Exception, argv: list[str], shapes: dict | None = None) -> UsageError:
    """A parse error as one line: options as --help spells them, the config file named, a bool option's bad value
    named (``shapes``: the command's option shapes, :func:`normalize`), and where to look."""
    line = option_error_line(error)
    text = _bool_value(line, argv, shapes or {}) or re.sub(r"^--[\w]+", lambda m: m.group(0).replace("_", "-"),
                                                              line)  # as --help spells it
    config = next((argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--config"), None)
    if config and text.startswith("Problems parsing config"):  # jsonargparse names the text, not the file
        text = f"{config}: {text}"
    return UsageError(f"{text} (see '{' '.join(['videoml', *_command(argv)[0]])} --help')")


def _lightning(argv: list[str]) -> int:
    """``fit|validate|test|predict``, parsed by LightningCLI; ``--profile`` is a shorthand for Lightning's profiler
    option with our schedule, replaced in place so that ``--trainer.profiler.init_args.*`` after it still apply."""
    if "--profile" in argv:
        at = argv.index("--profile")
        argv = argv[:at] + ["--trainer.profiler", PROFILER] + argv[at + 1:]
    from videoml.commands.parser import help_text_if_asked
    from videoml.train.cli import main as lightning_main

    with help_text_if_asked(argv):
        return lightning_main(argv)


def _tf_fit(args: list[str]) -> int:
    """``videoml tf fit``: videoml fit's own parser (:mod:`videoml.commands.tf`)."""
    from videoml.commands.tf import fit

    return fit(args)


def _slow_help(words: list[str]) -> bool:
    """``videoml fit --help`` and the like, whose parser (LightningCLI's) takes seconds to build: kept once built
    (:mod:`videoml.helpcache`)."""
    command = words[:2] if words[:2] == ["tf", "fit"] else words[:1]
    return bool(command) and command[0] in (*LIGHTNING_COMMANDS, "tf") and words[len(command):] in (["--help"], ["-h"])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    lead = next((i for i, a in enumerate(argv) if a not in DEBUG_FLAGS), len(argv))  # --debug before the command
    debug, rest = lead > 0, argv[lead:]
    if debug:
        os.environ["VIDEOML_DEBUG"] = "1"  # every process of the run leaves library log lines on stderr
    else:  # the PyTorch profiler's own lines on every profiled step (USDT profiler_start/stop, "gpuGetDeviceCount
        os.environ.setdefault("KINETO_LOG_LEVEL", "6")  # failed" on a CPU): above its highest level (USDT = 5)
        # TensorFlow's C++ log lines, also where another library imports it (TensorBoard's writer does): start-up
        # notices, and error-level diagnostics of its graph optimizer that are no failure ("remapper failed:
        # INVALID_ARGUMENT ... Mutation::Apply error" on every Keras train step of X3D); an op that fails raises
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        for config in config_files(rest):  # before any parser expands it
            check_config_size(config)
    except UsageError as e:
        return _report(e, debug)
    if _slow_help(rest):
        from videoml.helpcache import kept_help

        try:
            return kept_help(rest[:-1], lambda: _lightning(rest) if rest[0] != "tf" else _tf_fit(rest[2:]))
        except (VideomlError, OSError) as e:  # (tf fit without TensorFlow, say)
            return _report(e, debug)
    if rest and rest[0] in LIGHTNING_COMMANDS:  # Lightning handles SIGTERM itself (a checkpoint at the next batch)
        try:
            return _lightning(rest)
        except (VideomlError, OSError) as e:
            return _report(e, debug)
    stop_on_signals()  # SIGTERM unwinds like Ctrl-C: outputs closed, child processes terminated
    try:
        if rest[:2] == ["tf", "fit"]:
            return _tf_fit(rest[2:])
        try:
            command, values = _parse(rest)
        except Exception as e:  # jsonargparse's ArgumentError, or a type's own error while parsing a value
            return _report(e if isinstance(e, UsageError) else _usage_error(e, rest), debug)
        return call(command, values)
    except (VideomlError, OSError) as e:
        return _report(e, debug)
    except KeyboardInterrupt:
        print("videoml: interrupted", file=sys.stderr)
        return 130
    except Terminated as e:
        print("videoml: terminated", file=sys.stderr)
        return e.code
