"""The ``videoml`` command. Subcommands parse their options here and dispatch to the modules that do the work."""

from __future__ import annotations

import argparse
import math
import os
import sys
import traceback
from pathlib import Path

from videoml import __version__
from videoml.errors import UsageError, VideomlError
from videoml.processes import Terminated, stop_on_sigterm


def _int_at_least(minimum: int):
    """An argparse type: a whole number >= ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a number >= {minimum}, got {value}")
        return value

    return parse


_positive_int = _int_at_least(1)
_non_negative_int = _int_at_least(0)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text}")
    return value


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 128x128, got {text!r}") from None
    return w, h


def _fractions(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers such as 0.7,0.15,0.15, got {text!r}") from None


# --- videoml data synth ---------------------------------------------------------------------------------------------


def _add_synth(sub) -> None:
    from videoml.data.encode import CODECS
    from videoml.data.synth import MOTIONS, SynthConfig

    d = SynthConfig()
    p = sub.add_parser("synth", help="generate the learnable synthetic motion video data set",
                       description="Generate videos whose class is decided by motion alone (see data/README.md), "
                                   "with split files in PyTorchVideo's labeled-paths format.")
    p.add_argument("--out", default="data/synth", help="output directory (default: %(default)s)")
    p.add_argument("--classes", type=lambda s: tuple(s.split(",")), default=d.classes,
                   help=f"comma-separated class names, of {','.join(MOTIONS)} "
                        f"(default: {','.join(d.classes)})")
    p.add_argument("--videos-per-class", type=_positive_int, default=d.videos_per_class, help="(default: %(default)s)")
    p.add_argument("--frames", type=_positive_int, default=d.frames, help="frames per video (default: %(default)s)")
    p.add_argument("--fps", default=d.fps, help="frame rate, number or fraction like 30000/1001 (default: %(default)s)")
    p.add_argument("--size", type=_size, default=(d.width, d.height), help="WIDTHxHEIGHT (default: 128x128)")
    p.add_argument("--codec", choices=sorted(CODECS), default=d.codec,
                   help="h264 (MP4), hevc (MP4), mpeg4 (MPEG-4 Part 2 in AVI), vp9 (WebM) (default: %(default)s)")
    p.add_argument("--gop", type=_positive_int, default=d.gop, help="key frame interval in frames (default: %(default)s)")
    p.add_argument("--bframes", type=int, default=d.bframes, help="max consecutive B-frames (default: %(default)s)")
    p.add_argument("--vfr", action="store_true", help="variable frame rate: frame intervals jitter 0.5x-1.5x")
    p.add_argument("--start-time", type=float, default=d.start_time,
                   help="presentation time of the first frame, seconds (default: %(default)s)")
    p.add_argument("--bit-depth", type=int, choices=(8, 10), default=d.bit_depth,
                   help="8 or 10 bits per component (default: %(default)s)")
    p.add_argument("--open-gop", action="store_true", help="open GOPs: non-IDR key frames with leading B-frames (h264)")
    p.add_argument("--rotation", type=int, choices=(0, 90, 180, 270), default=d.rotation,
                   help="display matrix rotation, degrees counter-clockwise (default: %(default)s)")
    p.add_argument("--splits", type=_fractions, default=d.splits, help="train,val,test fractions (default: 0.7,0.15,0.15)")
    p.add_argument("--seed", type=int, default=d.seed, help="(default: %(default)s)")
    p.add_argument("--num-workers", type=_positive_int, default=min(os.cpu_count() or 1, 8),
                   help="encoding processes (default: %(default)s)")
    p.add_argument("--force", action="store_true", help="replace a data set made with other settings")
    p.set_defaults(run=_run_synth)


def _run_synth(args) -> int:
    from videoml.data.synth import SynthConfig, generate

    config = SynthConfig(classes=args.classes, videos_per_class=args.videos_per_class, frames=args.frames, fps=args.fps,
                         width=args.size[0], height=args.size[1], codec=args.codec, gop=args.gop,
                         bframes=args.bframes, vfr=args.vfr, start_time=args.start_time, bit_depth=args.bit_depth,
                         open_gop=args.open_gop, rotation=args.rotation, splits=args.splits,
                         seed=args.seed)
    dataset = generate(config, args.out, num_workers=args.num_workers, force=args.force,
                       progress=sys.stderr.isatty())
    counts = {s: sum(1 for _ in open(dataset.split_file(s))) for s in ("train", "val", "test")}
    print(f"synthetic data set in {dataset.root}: {len(config.classes)} classes, "
          + ", ".join(f"{n} {s}" for s, n in counts.items())
          + f" ({config.codec}, {config.frames} frames at {config.fps} fps, {config.width}x{config.height})")
    return 0


# --- videoml data check ---------------------------------------------------------------------------------------------


def _add_check(sub) -> None:
    from videoml.data.decoding.budget import DEFAULT_SECONDS

    p = sub.add_parser("check", help="check that video files decode, and report what they hold",
                       description="For every file: decodable or not, codec, size, frames that really decode vs "
                                   "the header's count, fps from the time stamps, key frame spacing. "
                                   "Exit status 1 when any file is bad.")
    p.add_argument("paths", nargs="+", help="video files, folders (searched recursively) or glob patterns")
    p.add_argument("--format", choices=("table", "jsonl"), default="table", help="(default: %(default)s)")
    p.add_argument("--output", "-o", help="write the report here instead of standard output")
    p.add_argument("--num-workers", type=_positive_int, default=min(os.cpu_count() or 1, 8),
                   help="files checked in parallel (default: %(default)s)")
    p.add_argument("--timeout", type=_positive_float, default=DEFAULT_SECONDS, metavar="SECONDS",
                   help="a file that takes longer to check is reported bad (default: %(default)g)")
    p.set_defaults(run=_run_check)


def _run_check(args) -> int:
    import json

    from tqdm.auto import tqdm

    from videoml.data.check import TABLE_HEADER, check_videos, format_row
    from videoml.data.files import find_videos

    paths = find_videos(args.paths)
    out = open(args.output, "w") if args.output else sys.stdout
    bad = 0
    try:
        if args.format == "table":
            print(TABLE_HEADER, file=out)
        records = check_videos(paths, args.num_workers, args.timeout)
        for record in tqdm(records, total=len(paths), unit="file", disable=not sys.stderr.isatty()):
            bad += not record["ok"]
            print(json.dumps(record) if args.format == "jsonl" else format_row(record), file=out, flush=True)
    finally:
        if args.output:
            out.close()
    print(f"{len(paths) - bad} of {len(paths)} files ok" + (f", {bad} bad" if bad else ""), file=sys.stderr)
    return 1 if bad else 0


# --- videoml data prepare -------------------------------------------------------------------------------------------


def _add_prepare(sub) -> None:
    from videoml.data.decoding.budget import DEFAULT_SECONDS
    from videoml.data.prepare import PrepareConfig

    d = PrepareConfig()
    p = sub.add_parser("prepare", help="re-encode a data set into a format that is cheap to train from",
                       description="Re-encode every video of SRC (a fit config's data sources, a labeled-paths "
                                   "file, a folder with train/val/test.csv, or a <class>/<video> folder) into DST: "
                                   "short side scaled down, short fixed GOPs, unreferenced B-frames, no deblocking, "
                                   "no audio; split files "
                                   "rewritten to the new paths, frame indices cached. Resumable: run it again to "
                                   "go on after a kill. Exit status 3 when some sources could not be prepared "
                                   "(listed in DST/bad.txt), 1 when more than --max-bad-fraction.")
    p.add_argument("src", help="the data set to prepare")
    p.add_argument("dst", help="output folder")
    p.add_argument("--short-side", type=_int_at_least(16), default=d.short_side,
                   help="scale the short side down to this (never up) (default: %(default)s)")
    p.add_argument("--max-fps", type=_positive_float, default=None, help="keep at most this many frames a second "
                   "(default: all; frame i then stays the source's frame i)")
    p.add_argument("--gop", type=_positive_int, default=d.gop, help="a key frame every this many frames, 1 for "
                   "every frame (default: %(default)s)")
    p.add_argument("--bframes", type=_non_negative_int, default=d.bframes, help="(default: %(default)s)")
    p.add_argument("--crf", type=int, default=d.crf, help="H.264 constant quality, 0 lossless..51 (default: %(default)s)")
    p.add_argument("--preset", default=d.preset, help="x264 preset (default: %(default)s)")
    p.add_argument("--tune", default=d.tune, help="x264 tune; 'none' for none (default: %(default)s)")
    p.add_argument("--num-workers", type=_positive_int, default=min(os.cpu_count() or 1, 8),
                   help="videos encoded in parallel (default: %(default)s)")
    p.add_argument("--timeout", type=_positive_float, default=DEFAULT_SECONDS, metavar="SECONDS",
                   help="a video that takes longer is listed as bad (default: %(default)g)")
    p.add_argument("--max-bad-fraction", type=float, default=0.05,
                   help="fail when more sources than this fraction are bad (default: %(default)s)")
    p.add_argument("--force", action="store_true", help="replace a prepared set made with other settings")
    p.set_defaults(run=_run_prepare)


def _run_prepare(args) -> int:
    from videoml.data.prepare import PrepareConfig, prepare

    config = PrepareConfig(short_side=args.short_side, max_fps=args.max_fps, gop=args.gop, bframes=args.bframes,
                           crf=args.crf, preset=args.preset, tune=None if args.tune == "none" else args.tune)
    summary = prepare(args.src, args.dst, config, num_workers=args.num_workers, timeout=args.timeout,
                      max_bad_fraction=args.max_bad_fraction, force=args.force, progress=sys.stderr.isatty())
    for record in summary.bad:
        print(f"bad: {record['source']}: {record['error']}", file=sys.stderr)
    print(summary.line(), file=sys.stderr)
    for split in summary.splits:
        print(f"data.{split}: {{kind: labeled_paths, path: {Path(args.dst) / f'{split}.csv'}}}")
    return 3 if summary.bad else 0


# --- videoml data corpus / conformance ------------------------------------------------------------------------------


def _add_corpus(sub) -> None:
    p = sub.add_parser("corpus", help="fetch (and cache) the conformance corpus of real and generated videos",
                       description="Real sample videos from Debian packages (data/corpus/debian.json: package, "
                                   "version, checksum, licence, what each file exercises) and generated files for "
                                   "the classes no package ships. Prints one path per line.")
    p.add_argument("--dir", help="where the corpus is kept (default: $VIDEOML_CORPUS_DIR or ~/.cache/videoml/corpus)")
    p.set_defaults(run=_run_corpus)


def _run_corpus(args) -> int:
    from videoml.data.corpus import corpus

    for path in corpus(Path(args.dir) if args.dir else None):
        print(path)
    return 0


def _add_conformance(sub) -> None:
    p = sub.add_parser("conformance", help="compare every backend's frames with FFmpeg's decoder, file by file",
                       description="For every file x backend: num_frames against FFmpeg's picture count, every "
                                   "frame in sequential calls, random frames, random clips and multi-view clips, "
                                   "each compared with the picture FFmpeg's command line decodes at that index. "
                                   "Prints a Markdown table (exact / refused with the reason / wrong with the first "
                                   "bad index); exit status 1 if any is wrong.")
    p.add_argument("paths", nargs="*", help="video files, folders or glob patterns (default: the corpus)")
    p.add_argument("--backends", default="pyav,decord,torchcodec", help="(default: %(default)s)")
    p.add_argument("--no-autorotate", dest="autorotate", action="store_false",
                   help="compare pictures as stored, ignoring display matrices")
    p.add_argument("--jsonl", help="also write one record per file x backend here")
    p.add_argument("--num-workers", type=_positive_int, default=min(os.cpu_count() or 1, 4),
                   help="files checked in parallel (default: %(default)s)")
    p.set_defaults(run=_run_conformance)


def _run_conformance(args) -> int:
    import json

    from videoml.data.conformance import conformance, format_table
    from videoml.data.corpus import corpus, corpus_dir
    from videoml.data.decoding import BACKENDS, backend_available
    from videoml.data.files import find_videos

    backends = tuple(b for b in args.backends.split(",") if b)
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown:
        raise UsageError(f"--backends: unknown {', '.join(unknown)} (known: {', '.join(BACKENDS)})")
    backends = tuple(b for b in backends if backend_available(b))
    paths = find_videos(args.paths) if args.paths else corpus()
    verdicts = conformance(paths, backends, args.num_workers, args.autorotate)
    if args.jsonl:
        with open(args.jsonl, "w") as f:
            f.writelines(json.dumps(v.as_dict()) + "\n" for v in verdicts)
    print(format_table(verdicts, None if args.paths else corpus_dir()))
    counts = {status: sum(v.status == status for v in verdicts) for status in ("exact", "refused", "wrong")}
    print(", ".join(f"{n} {status}" for status, n in counts.items()) + f" ({len(paths)} files x {len(backends)} "
          "backends)", file=sys.stderr)
    return 1 if counts["wrong"] else 0


# --- videoml bench decode|model|infer -------------------------------------------------------------------------------


def _run_bench(bench, name: str) -> int:
    """Run a benchmark of ``videoml.bench.<name>``, write its results, print its table."""
    import importlib

    module = importlib.import_module(f"videoml.bench.{name}")
    results = module.run(bench)
    out = module.write(results, bench.out)
    print(module.table(results))
    print(f"\nresults in {out}/{name}.json, {out}/{name}.md")
    return 0


# --- videoml bench decode -------------------------------------------------------------------------------------------


def _add_bench_decode(sub) -> None:
    from videoml.bench.decode import DecodeBench

    d = DecodeBench()
    p = sub.add_parser("decode", help="clip decoding per backend vs FFmpeg's ceiling and PyTorchVideo",
                       description="Single-threaded clip decoding on generated H.264 videos (made once under --data): "
                                   "random clips, 10-minute videos, real files of the conformance corpus, multi-view "
                                   "testing, memory over many reads.")
    p.add_argument("--data", default=d.data, help="where the benchmark videos are made (default: %(default)s)")
    p.add_argument("--out", default=d.out, help="results directory (default: %(default)s)")
    p.add_argument("--backends", type=lambda s: tuple(s.split(",")), default=d.backends,
                   help="comma-separated (default: pyav,decord,torchcodec where installed)")
    p.add_argument("--frames", type=_positive_int, default=d.frames, help="T (default: %(default)s)")
    p.add_argument("--stride", type=_positive_int, default=d.stride, help="τ (default: %(default)s)")
    p.add_argument("--views", type=_positive_int, default=d.views, help="test views (default: %(default)s)")
    p.add_argument("--clips", type=_positive_int, default=d.clips, help="clips per scenario (default: %(default)s)")
    p.add_argument("--repeats", type=_positive_int, default=d.repeats, help="(default: %(default)s)")
    p.add_argument("--memory-reads", type=_positive_int, default=d.memory_reads, help="(default: %(default)s)")
    p.add_argument("--no-pytorchvideo", dest="pytorchvideo", action="store_false",
                   help="skip the PyTorchVideo EncodedVideo baseline")
    p.add_argument("--no-real", dest="real", action="store_false",
                   help="skip the scenario on the conformance corpus's real files")
    p.add_argument("--no-training", dest="training", action="store_false",
                   help="skip the training-sample scenario (original vs prepared data)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.set_defaults(run=_run_bench_decode)


def _run_bench_decode(args) -> int:
    from videoml.bench.decode import DecodeBench

    unknown = [b for b in args.backends if b not in ("pyav", "decord", "torchcodec")]
    if unknown:
        raise UsageError(f"unknown backends {unknown} (known: pyav, decord, torchcodec)")
    bench = DecodeBench(data=args.data, out=args.out, backends=args.backends, frames=args.frames, stride=args.stride,
                        views=args.views, clips=args.clips, repeats=args.repeats, memory_reads=args.memory_reads,
                        pytorchvideo=args.pytorchvideo, real=args.real, training=args.training, seed=args.seed)
    return _run_bench(bench, "decode")


def _add_bench_model(sub) -> None:
    from videoml.bench.model import ModelBench

    d = ModelBench()
    p = sub.add_parser("model", help="forward and train-step clips/s per model and execution mode",
                       description="Clips/s of registry models (random clips at their canonical input, on the "
                                   "device) per mode: memory format, precision, torch.compile. Modes are written "
                                   "like fp32, cl3d, cl3d+bf16, cl3d+compile, bf16+compile (cl3d = channels_last_3d).")
    p.add_argument("--models", type=lambda s: tuple(s.split(",")), default=d.models,
                   help="comma-separated registry names (default: %(default)s)")
    p.add_argument("--modes", type=lambda s: tuple(s.split(",")), default=d.modes,
                   help="comma-separated; ratios are against the first (default: %(default)s)")
    p.add_argument("--batch-size", type=_positive_int, default=d.batch_size, help="(default: %(default)s)")
    p.add_argument("--device", default=d.device, help="(default: %(default)s)")
    p.add_argument("--warmup", type=int, default=d.warmup, help="untimed steps first (default: %(default)s)")
    p.add_argument("--steps", type=_positive_int, default=d.steps, help="steps a timed round (default: %(default)s)")
    p.add_argument("--repeats", type=_positive_int, default=d.repeats, help="timed rounds (default: %(default)s)")
    p.add_argument("--out", default=d.out, help="results directory (default: %(default)s)")
    p.add_argument("--profile", action="store_true",
                   help="also trace each model and mode's train step (PyTorch Profiler) into OUT/profile-*/")
    p.set_defaults(run=_run_bench_model)


def _run_bench_model(args) -> int:
    from videoml.bench.model import Mode, ModelBench
    from videoml.models.registry import model_entry

    for name in args.models:
        model_entry(name)  # unknown names fail before anything runs
    for mode in args.modes:
        Mode.parse(mode)
    bench = ModelBench(models=args.models, modes=args.modes, batch_size=args.batch_size, device=args.device,
                       warmup=args.warmup, steps=args.steps, repeats=args.repeats, out=args.out,
                       profile=args.profile)
    return _run_bench(bench, "model")


def _add_bench_infer(sub) -> None:
    from videoml.bench.infer import InferBench
    from videoml.vocab import Precision, choices

    d = InferBench()
    p = sub.add_parser("infer", help="videoml infer vs the PyTorchVideo tutorial loop and vs the model alone",
                       description="Videos/s and clips/s of `videoml infer`, of PyTorchVideo's inference tutorial "
                                   "loop (one get_clip and one model call per view) and of the model alone, on the "
                                   "same generated videos, model and views.")
    p.add_argument("--data", default=d.data, help="where the benchmark videos are made (default: %(default)s)")
    p.add_argument("--out", default=d.out, help="results directory (default: %(default)s)")
    p.add_argument("--model", default=d.model, help="registry model, random weights (default: %(default)s)")
    p.add_argument("--views", type=_positive_int, default=d.views, help="(default: %(default)s)")
    p.add_argument("--videos", type=_positive_int, default=d.videos, help="(default: %(default)s)")
    p.add_argument("--baseline-videos", type=_positive_int, default=d.baseline_videos,
                   help="videos the tutorial loop is timed on (default: %(default)s)")
    p.add_argument("--batch-size", type=_positive_int, default=d.batch_size, help="(default: %(default)s)")
    p.add_argument("--num-workers", type=_non_negative_int, default=d.num_workers, help="(default: %(default)s)")
    p.add_argument("--device", default=d.device, help="(default: %(default)s)")
    p.add_argument("--precision", choices=choices(Precision), default=d.precision)
    p.add_argument("--repeats", type=_positive_int, default=d.repeats, help="(default: %(default)s)")
    p.set_defaults(run=_run_bench_infer)


def _run_bench_infer(args) -> int:
    from videoml.bench.infer import InferBench

    bench = InferBench(data=args.data, out=args.out, model=args.model, views=args.views, videos=args.videos,
                       baseline_videos=args.baseline_videos, batch_size=args.batch_size, num_workers=args.num_workers,
                       device=args.device, precision=args.precision, repeats=args.repeats)
    return _run_bench(bench, "infer")


def _add_bench_suite(sub) -> None:
    p = sub.add_parser("suite", help="a declared matrix: models x frameworks x modes x batch sizes x stages",
                       description="Run a benchmark suite (configs/bench/*.yaml): one process per framework, ceilings "
                                   "measured first; writes runs/*.json, suite.json, table.md and plots into --out.")
    p.add_argument("config", help="suite config, e.g. configs/bench/cpu.yaml")
    p.add_argument("--out", help="results folder (default: runs/bench/<suite name>)")
    p.add_argument("--frameworks", type=lambda s: s.split(","), help="only these frameworks (torch, tf)")
    p.set_defaults(run=_run_bench_suite)


def _run_bench_suite(args) -> int:
    from videoml.bench import suite

    config = suite.SuiteConfig.load(args.config)
    out = args.out or f"runs/bench/{config.name}"
    summary = suite.run(config, out, args.frameworks)
    print((Path(out) / "table.md").read_text())
    print(f"results in {out}: suite.json, table.md, throughput.png, stages.png, scaling.png, runs/ "
          f"({len(summary['rows'])} runs)")
    return 0


def _add_bench_compare(sub) -> None:
    p = sub.add_parser("compare", help="two suite results folders side by side, with ratios",
                       description="Runs present in both folders: clips/s, the ratio B/A, and whether the change is "
                                   "beyond the noise (the 95%% intervals of the medians do not overlap).")
    p.add_argument("a", help="results folder A (the reference)")
    p.add_argument("b", help="results folder B")
    p.set_defaults(run=_run_bench_compare)


def _run_bench_compare(args) -> int:
    from videoml.bench.report import compare

    text, _ = compare(args.a, args.b)
    print(text)
    return 0


# --- videoml infer ---------------------------------------------------------------------------------------------------


def _add_infer(commands) -> None:
    from videoml.infer.run import AGGREGATES, EXIT_SOME_FAILED, InferConfig
    from videoml.vocab import Precision, choices

    d = InferConfig(model="", inputs=[])
    p = commands.add_parser(
        "infer", help="classify videos with a trained or exported model",
        description="Classify video files with a checkpoint from `videoml fit` or a model from `videoml export`. "
                    "Writes one JSON record per video (path, status, top-k, timing, error), incrementally.",
        epilog=f"Exit status: 0 when every video was classified, {EXIT_SOME_FAILED} when some could not be (their "
               "records say why), 2 for usage errors, 1 when the run could not start.")
    p.add_argument("inputs", nargs="+", help="video files, folders (recursive), glob patterns, list files "
                                             "(@list or *.txt / *.lst: one path a line)")
    p.add_argument("--model", "-m", required=True,
                   help="checkpoint (.ckpt) or exported model (.ts TorchScript, .pt2 torch.export, .onnx)")
    p.add_argument("--output", "-o", default=d.output, help="JSONL results file (default: %(default)s)")
    p.add_argument("--csv", help="also write the results as CSV here")
    p.add_argument("--views", type=_positive_int, help="temporal views per video (default: the model's recipe)")
    p.add_argument("--crops", type=int, choices=(1, 3), help="spatial crops per view (default: the model's recipe)")
    p.add_argument("--top-k", type=_positive_int, default=d.top_k, help="(default: %(default)s)")
    p.add_argument("--aggregate", choices=AGGREGATES, default=d.aggregate,
                   help="how clip scores make a video's: mean of softmax (default), max of softmax, softmax of the "
                        "mean logits")
    p.add_argument("--per-clip", action="store_true", help="also record every view's top-k")
    p.add_argument("--dense", type=_positive_float, metavar="SECONDS",
                   help="clips every SECONDS over the whole video instead of --views: a timeline of segments")
    p.add_argument("--batch-size", type=_positive_int, default=d.batch_size, help="clips per model call "
                                                                                  "(default: %(default)s)")
    p.add_argument("--num-workers", type=_non_negative_int, default=d.num_workers,
                   help="decoding processes, 0 to decode in the main process (default: %(default)s)")
    p.add_argument("--backend", choices=("pyav", "decord", "torchcodec"), default=d.backend)
    p.add_argument("--decode-timeout", type=_positive_float, default=d.decode_timeout, metavar="SECONDS",
                   help="a video that takes longer to read is recorded as failed (default: %(default)g)")
    p.add_argument("--device", default="cpu",
                   help="cpu, cuda, cuda:1, or a comma-separated list (one process per device, outputs merged)")
    p.add_argument("--precision", choices=choices(Precision), default=d.precision, help="autocast (default: fp32)")
    p.add_argument("--memory-format", choices=("auto", "channels_last_3d", "contiguous"), default=d.memory_format,
                   help="auto: by device and architecture, as measured (default)")
    p.add_argument("--resume", action="store_true", help="go on with an existing output, skipping videos in it")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("--profile", nargs="?", const="", metavar="FOLDER",
                   help="profile the model calls (default folder: beside the output)")
    p.set_defaults(run=_run_infer)


def _run_infer(args) -> int:
    from pathlib import Path

    from videoml.infer.run import EXIT_SOME_FAILED, InferConfig, infer

    profile = None
    if args.profile is not None:
        profile = args.profile or str(Path(args.output).with_name(Path(args.output).stem + ".profile"))
    config = InferConfig(model=args.model, inputs=args.inputs, output=args.output, csv=args.csv, views=args.views,
                         crops=args.crops, top_k=args.top_k, aggregate=args.aggregate, per_clip=args.per_clip,
                         dense=args.dense, batch_size=args.batch_size, num_workers=args.num_workers,
                         backend=args.backend, decode_timeout=args.decode_timeout, devices=tuple(d.strip() for d in args.device.split(",")),
                         precision=args.precision, memory_format=args.memory_format, resume=args.resume,
                         overwrite=args.overwrite, progress=sys.stderr.isatty(), profile=profile)
    summary = infer(config)
    print(f"{summary.line()}; results in {args.output}", file=sys.stderr)
    return EXIT_SOME_FAILED if summary.failed else 0


# --- videoml export --------------------------------------------------------------------------------------------------


def _add_export(commands) -> None:
    from videoml.export import DEFAULT_OPSET, FORMATS

    p = commands.add_parser(
        "export", help="export a checkpoint to TorchScript, torch.export (.pt2) or ONNX, verified",
        description="Export a `videoml fit` checkpoint. Each file is checked in a fresh process without videoml: "
                    "its logits on real decoded clips must match eager PyTorch's (see docs/inference.md).")
    p.add_argument("checkpoint", help="a checkpoint from videoml fit (.ckpt)")
    p.add_argument("--format", "-f", action="append", choices=(*FORMATS, "all"),
                   help="repeat for several; 'all' tries every format (default: pt2)")
    p.add_argument("--out", "-o", default="export", help="file, or folder for model.<suffix> (default: %(default)s)")
    p.add_argument("--sample", help="video to verify with (default: a generated synthetic video)")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET, help="ONNX opset (default: %(default)s)")
    p.add_argument("--batch", type=_positive_int, default=2, help="example batch to export with (default: 2)")
    p.set_defaults(run=_run_export)


def _run_export(args) -> int:
    from videoml.export import FORMATS, Exporter, output_path, report_json

    requested = args.format or ["pt2"]
    formats = list(FORMATS) if "all" in requested else list(dict.fromkeys(requested))
    if len(formats) > 1 and os.path.splitext(args.out)[1]:
        raise UsageError("several formats need --out to be a folder")
    for fmt in formats:
        output_path(fmt, args.out)  # a wrong name fails before the model is loaded
    exporter = Exporter(args.checkpoint, sample_video=args.sample, batch=args.batch)
    failed = 0
    for fmt in formats:
        try:
            report = exporter.export(fmt, args.out, opset=args.opset)
        except VideomlError as e:
            if len(formats) == 1:
                raise
            print(f"videoml: {fmt}: {e}", file=sys.stderr)
            failed += 1
            continue
        print(report_json(report))
        print(f"{fmt}: {report.path} ({report.bytes / 1e6:.1f} MB), verified: max |logit diff| "
              f"{report.max_abs_diff:.2g} on {report.batch_checked} clips", file=sys.stderr)
    return 1 if failed else 0


# --- videoml tf fit -------------------------------------------------------------------------------------------------


def _add_tf(commands) -> None:
    tf = commands.add_parser("tf", help="the TensorFlow twin (needs the [tf] extra)")
    tf_commands = tf.add_subparsers(title="commands", metavar="COMMAND", required=True)
    p = tf_commands.add_parser(
        "fit", help="train the Keras twin of a model from a videoml fit config, with MirroredStrategy",
        description="Train the Keras mirror of the config's model (started from the PyTorch initial weights) on the "
                    "same data, schedule and evaluation as `videoml fit`. Overrides: --section.key VALUE, as for "
                    "videoml fit (e.g. --trainer.max_epochs 3).")
    p.add_argument("--config", required=True, help="a videoml fit YAML config (configs/)")
    p.add_argument("--devices", type=_positive_int,
                   help="replicas: GPUs, or logical CPU devices without GPUs (default: trainer.devices, else all "
                        "GPUs or 1 CPU)")
    p.add_argument("--mode", choices=("eager", "graph", "xla"), default="graph",
                   help="eager (no tf.function), graph (tf.function), xla (jit_compile=True) (default: %(default)s)")
    p.add_argument("--resume", action="store_true", help="continue the latest run from its last.keras")
    p.add_argument("--run-dir", help="run directory (default: <trainer.default_root_dir>/tf/version_N)")
    p.set_defaults(run=_run_tf_fit, overrides=True)


def _overrides(items: list[str]) -> dict:
    """``--a.b VALUE`` pairs (values read as YAML, as LightningCLI does) -> {"a.b": value}."""
    import yaml

    result, items = {}, list(items)
    while items:
        key = items.pop(0)
        if not key.startswith("--") or "." not in key:
            raise UsageError(f"unexpected argument {key!r} (overrides are --section.key VALUE)")
        if "=" in key:
            key, value = key.split("=", 1)
        elif items:
            value = items.pop(0)
        else:
            raise UsageError(f"{key} needs a value")
        result[key[2:]] = yaml.safe_load(value)
    return result


def _run_tf_fit(args) -> int:
    from videoml.tf.fit import FitOptions, fit, load_config

    config = load_config(args.config, _overrides(args.extra))
    result = fit(config, FitOptions(devices=args.devices, mode=args.mode, resume=args.resume,
                                    run_dir=Path(args.run_dir) if args.run_dir else None,
                                    progress=sys.stderr.isatty()))
    shown = {k: result[k] for k in result if k.startswith(("val/top", "test/top"))}
    print(f"run: {result['run']}  " + "  ".join(f"{k} {v}" for k, v in shown.items()))
    return 0


# --- videoml fit|validate|test|predict -------------------------------------------------------------------------------


def _report(error: Exception, debug: bool) -> int:
    """An error the user can fix: one line (the traceback only with --debug); the exit status."""
    if debug:
        traceback.print_exc()
    print(f"videoml: error: {error}", file=sys.stderr)
    return getattr(error, "exit_code", 1)


def _run_lightning(argv: list[str], debug: bool) -> int:
    try:
        from videoml.train.cli import main as lightning_main

        return lightning_main(argv)
    except (VideomlError, OSError) as e:
        return _report(e, debug)


# --- the entry point ------------------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line that says where to find help."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")
DEBUG_FLAGS = ("--debug", "-v")
PROFILER = "videoml.profiling.TrainingProfiler"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="videoml", description="Video understanding on PyTorchVideo.")
    parser.add_argument("--version", action="version", version=f"videoml {__version__}")
    parser.add_argument("--debug", "-v", action="store_true", help="show tracebacks for errors")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for name in LIGHTNING_COMMANDS:  # listed for --help; handled by LightningCLI (see main)
        commands.add_parser(name, help=f"{name} with Lightning: videoml {name} --config configs/....yaml "
                                       f"[--profile] (see videoml {name} --help)")

    _add_infer(commands)
    _add_export(commands)
    _add_tf(commands)

    data = commands.add_parser("data", help="make and check video data sets")
    data_commands = data.add_subparsers(title="commands", metavar="COMMAND", required=True)
    _add_synth(data_commands)
    _add_check(data_commands)
    _add_prepare(data_commands)
    _add_corpus(data_commands)
    _add_conformance(data_commands)

    bench = commands.add_parser("bench", help="benchmarks")
    bench_commands = bench.add_subparsers(title="commands", metavar="COMMAND", required=True)
    _add_bench_decode(bench_commands)
    _add_bench_infer(bench_commands)
    _add_bench_model(bench_commands)
    _add_bench_suite(bench_commands)
    _add_bench_compare(bench_commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if a not in DEBUG_FLAGS), None)
    if command in LIGHTNING_COMMANDS:  # LightningCLI parses these itself (configs, overrides, --help)
        position = argv.index(command)
        rest = argv[position:]
        if "--profile" in rest:  # shorthand for Lightning's profiler option with our schedule (in place, so that
            at = rest.index("--profile")  # --trainer.profiler.init_args.* after it still apply)
            rest = rest[:at] + ["--trainer.profiler", PROFILER] + rest[at + 1:]
        return _run_lightning(rest, debug=position > 0)
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "overrides", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra = extra
    stop_on_sigterm()  # SIGTERM unwinds like Ctrl-C: outputs closed, child processes terminated
    try:
        return args.run(args)
    except (VideomlError, OSError) as e:
        return _report(e, args.debug)
    except KeyboardInterrupt:
        print("videoml: interrupted", file=sys.stderr)
        return 130
    except Terminated as e:
        print("videoml: terminated", file=sys.stderr)
        return e.code
