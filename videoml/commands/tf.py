"""``videoml tf fit``: the Keras twin trained from a ``videoml fit`` config, read by ``videoml fit``'s own parser."""

from __future__ import annotations

import dataclasses
import sys

from videoml.commands.parser import NOT_OPTIONS, conventional, help_text_if_asked, normalize, options_of


def fit(args: list[str]) -> int:
    """Train the Keras mirror of the config's model (started from the PyTorch initial weights) on the same data,
    schedule and evaluation as `videoml fit`: ``--config FILE``, ``--section.key VALUE`` overrides as for videoml fit,
    and the options of :class:`videoml.tf.fit.FitOptions` (``--devices``, ``--mode``, ``--resume``, ``--run_dir``)."""
    from videoml.tf.fit import FitOptions, fit as train

    config = parse_config(args, FitOptions)
    names = [f.name for f in dataclasses.fields(FitOptions) if f.name not in NOT_OPTIONS]
    options = FitOptions(**{name: config.pop(name) for name in names}, progress=sys.stderr.isatty())
    result = train(config, options)
    shown = {k: result[k] for k in result if k.startswith(("val/top", "test/top"))}
    print(f"run: {result['run']}  " + "  ".join(f"{k} {v}" for k, v in shown.items()))
    return 0


def parse_config(args: list[str], extra: type):
    """``videoml fit``'s configuration from ``args`` (``--config FILE``, ``--section.key VALUE``), checked and
    completed by the same parser, links applied, nothing built; the fields of ``extra`` (a dataclass) are added as
    top-level options. The TensorFlow twin trains from it."""
    from videoml.train.cli import VideoCLI, build

    class ParseOnly(VideoCLI):
        def add_arguments_to_parser(self, parser):
            super().add_arguments_to_parser(parser)
            parser.add_class_arguments(extra, as_group=False, skip=NOT_OPTIONS)
            conventional(parser, options_of(extra), {}, {}, {})

        def instantiate_classes(self):
            pass

    # the parser reads the arguments as it is made: --no-X of extra's bool options is known from their types
    bools = {f"--{name}": "bool" for name, (hint, _) in options_of(extra).items() if hint is bool}
    with help_text_if_asked(args):
        return build(ParseOnly, normalize(args, bools), "tf fit", run=False).config
