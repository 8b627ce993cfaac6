"""``videoml tf fit``: the Keras twin trained from a ``videoml fit`` config, read by ``videoml fit``'s own parser."""

from __future__ import annotations

import dataclasses
import sys


def fit(args: list[str]) -> int:
    """Train the Keras mirror of the config's model (started from the PyTorch initial weights) on the same data,
    schedule and evaluation as `videoml fit`: ``--config FILE``, ``--section.key VALUE`` overrides as for videoml fit,
    and the options of :class:`videoml.tf.fit.FitOptions` (``--devices``, ``--mode``, ``--resume``, ``--run_dir``)."""
    from videoml.tf.fit import FitOptions, fit as train
    from videoml.train.cli import parse_config

    config = parse_config(args, FitOptions)
    names = [f.name for f in dataclasses.fields(FitOptions) if f.name != "progress"]
    options = FitOptions(**{name: config.pop(name) for name in names}, progress=sys.stderr.isatty())
    result = train(config, options)
    shown = {k: result[k] for k in result if k.startswith(("val/top", "test/top"))}
    print(f"run: {result['run']}  " + "  ".join(f"{k} {v}" for k, v in shown.items()))
    return 0
