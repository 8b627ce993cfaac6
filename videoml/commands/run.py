"""``videoml infer``, ``videoml extract`` and ``videoml export``: running a trained model."""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import os
import sys
import time
from pathlib import Path
from typing import Literal

from jsonargparse.typing import PositiveInt

import videoml
from videoml.errors import UsageError, VideomlError, first_line
from videoml.infer.options import ExtractConfig, InferConfig, VideoRun
from videoml.vocab import DEFAULT_OPSET, ExportFormat

ExportChoice = Literal[ExportFormat, "all"]  # a format, or every one that applies to the model


def infer(options: InferConfig) -> int:
    """Classify video files with a checkpoint from `videoml fit`, a model from `videoml export` or published weights
    (zoo:NAME). Writes one JSON record per video (path, status, top-k, timing, error), incrementally. Exit status: 0
    when every video was classified, 3 when some could not be (their records say why), 2 for usage errors, 1 when the
    run could not start."""
    return _run_videos(options)


def extract(options: ExtractConfig) -> int:
    """Embeddings of video files (the classifier's input, or a named block's output) per clip and per video, from a
    checkpoint of `videoml fit`, published weights (zoo:NAME) or a `videoml export --features` file, sampled and
    decoded as `videoml infer` does: one .npy per video and clip set plus index.jsonl in the output folder (see
    docs/inference.md). Same exit status, records and --resume as infer."""
    return _run_videos(options)


def _run_videos(options: VideoRun) -> int:
    from videoml.infer.run import EXIT_SOME_FAILED, infer as run

    output = Path(options.outputs()[0])
    if options.profile == "":
        options = dataclasses.replace(options, profile=str(output.with_name(output.stem + ".profile")))
    summary = run(dataclasses.replace(options, progress=sys.stderr.isatty()))
    wall = time.monotonic() - videoml.STARTED  # what the user waited: imports, model loading and the run
    print(f"{summary.line()}; {wall:.1f} s in all; results in {output}", file=sys.stderr)
    if summary.message:
        print(summary.message, file=sys.stderr)
    return EXIT_SOME_FAILED if summary.failed else 0


def export(checkpoint: str, formats: list[ExportChoice] | None = None, out: str = "export",
           sample: str | None = None, opset: PositiveInt = DEFAULT_OPSET, batch_size: PositiveInt = 2,
           features: str | None = None, optimize: bool = False) -> int:
    """Export a `videoml fit` checkpoint. Each file is checked in a fresh process without videoml: its logits on
    real decoded clips must match eager PyTorch's (see docs/inference.md).

    Args:
        checkpoint: a checkpoint from videoml fit (.ckpt).
        formats: the formats to write (default: pt2); 'all': every portable format that applies to the model (the
            others are listed as skipped, with the reason; the exit status is 0 when one was written); aoti (by
            name): compiled ahead of time for this machine, what videoml infer runs fastest on a CPU.
        out: file, or folder for model.<suffix>.
        sample: video to verify with (default: a generated synthetic video).
        opset: ONNX opset.
        batch_size: the example batch exported with (a dynamic batch dimension: any batch size runs).
        features: export the embeddings of this layer instead of the logits, for videoml extract ('head': the
            classifier's input; or a block's name, its output pooled).
        optimize: export the fast inference graph (BatchNorm folded into the convolutions), checked against the
            model as trained like every export.
    """
    from videoml.export import PORTABLE, Exporter, output_path, report_json

    requested = formats or ["pt2"]
    chosen = list(dict.fromkeys([*PORTABLE, *requested] if "all" in requested else requested))
    chosen = [f for f in chosen if f != "all"]
    if len(chosen) > 1 and os.path.splitext(out)[1]:
        raise UsageError("several formats need --out to be a folder")
    for fmt in chosen:
        output_path(fmt, out)  # a wrong name fails before the model is loaded
    exporter = Exporter(checkpoint, sample_video=sample, batch=batch_size, features=features, optimize=optimize)
    failed = written = 0
    for fmt in chosen:
        try:
            report = exporter.export(fmt, out, opset=opset)
        except VideomlError as e:
            if len(chosen) == 1:
                raise
            # 'all' writes what applies to the model and says what it skipped; formats asked for by name must work
            print(json.dumps({"format": fmt, "skipped" if "all" in requested else "error": first_line(e)}))
            print(f"{fmt}: {'skipped' if 'all' in requested else 'failed'}: {first_line(e)}", file=sys.stderr)
            failed += "all" not in requested
            continue
        written += 1
        print(report_json(report))
        print(f"{fmt}: {report.path} ({report.bytes / 1e6:.1f} MB), verified: max |logit diff| "
              f"{report.max_abs_diff:.2g} on {report.batch_checked} clips", file=sys.stderr)
    return 1 if failed or not written else 0


def report(path: str, plots: bool = True) -> int:
    """Print the per-class report (top-1 per class, the most confused pairs) of a run directory, a `videoml infer
    --labels` report or one report folder, and write its per-class CSVs and confusion-matrix PNG again from the
    matrix; for a run directory, where its learning curves are (curves.png).

    Args:
        path: a run directory (RUN_DIR/report/val, RUN_DIR/report/test), OUTPUT.report of infer, or a report folder.
        plots: regenerate per_class.csv, confused.csv and confusion.png from confusion.csv (where the folder can be
            written; a read-only one is only printed).
    """
    from videoml.evaluation import ClassReport, report_folders

    for folder in report_folders(path):
        report = ClassReport.read(folder)
        print(f"## {folder}\n\n{report.table()}")
        if plots:
            try:
                report.write_derived(folder)
            except OSError as e:  # printing needs no writing: a read-only report (an archive, a shared run) prints
                print(f"videoml: {folder}: its CSVs and PNG were not written again ({e.strerror})", file=sys.stderr)
    curves = Path(path) / "curves.png"  # a run directory's learning curves (fit draws them)
    if curves.is_file():
        print(f"learning curves (loss, top-1 per epoch): {curves}")
    return 0


def models(pattern: str = "*") -> int:
    """List the models: each architecture with its input (frames x stride, or frames @ rate; the training crop, and
    the evaluation crop where it differs: 160px/182), the published weights it loads by name (-m zoo:NAME,
    --model.weights zoo:NAME) with the accuracy and the test views they were published with, and whose they are.

    Args:
        pattern: a shell-style pattern of model names ("x3d*").
    """
    from videoml.models.huggingface import cached_models
    from videoml.models.registry import list_models, model_entry
    from videoml.models.zoo import ZOO

    names = list_models(pattern) + [name for name in cached_models() if fnmatch.fnmatchcase(name, pattern)]
    if not names:
        raise UsageError(f"no model matches {pattern!r} (see 'videoml models')")
    rows = [("model", "input", "published weights", "Kinetics-400 top-1 / top-5 (views)", "family", "")]
    for name in names:
        entry = model_entry(name)
        spec = entry.input
        test = spec.crop_side(train=False)
        shape = (f"{spec.frames}@{spec.fps:g}fps" if spec.fps else f"{spec.frames}x{spec.stride}") + \
            f" {spec.crop}px" + (f"/{test}" if test != spec.crop else "") + \
            (f" alpha {spec.slowfast_alpha}" if spec.slowfast_alpha else "")
        for key in [key for key, weights in ZOO.items() if weights.model == name] or [None]:
            weights = ZOO.get(key)
            accuracy = (f"{_number(weights.top1)} / {_number(weights.top5)} ({weights.views}x{weights.crops})"
                        if weights else "")
            rows.append((name, shape, f"zoo:{key}" if key else "", accuracy, entry.family, entry.description))
    widths = [max(len(row[k]) for row in rows) for k in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    print("published weights: as their library publishes them (numbers not measured here); the others train from "
          "scratch or from --model.weights; hf:ORG/NAME (the Hugging Face cache, listed) or hf:FOLDER: VideoMAE, "
          "TimeSformer and ViViT classifiers of transformers", file=sys.stderr)
    return 0


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
