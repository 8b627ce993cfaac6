"""The ``videoml`` command. Subcommands parse their options here and dispatch to the modules that do the work."""

from __future__ import annotations

import argparse
import os
import sys
import traceback

from videoml import __version__
from videoml.errors import UsageError, VideomlError


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
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
    from videoml.data.synth import CODECS, MOTIONS, SynthConfig

    d = SynthConfig()
    p = sub.add_parser("synth", help="generate the learnable synthetic motion video data set",
                       description="Generate videos whose class is decided by motion alone (see data/README.md), "
                                   "with split files in PyTorchVideo's labeled-paths format.")
    p.add_argument("--out", default="data/synth", help="output directory (default: %(default)s)")
    p.add_argument("--classes", type=lambda s: tuple(s.split(",")), default=d.classes,
                   help=f"comma-separated class names (default: all of {','.join(MOTIONS)})")
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
    p.add_argument("--splits", type=_fractions, default=d.splits, help="train,val,test fractions (default: 0.7,0.15,0.15)")
    p.add_argument("--seed", type=int, default=d.seed, help="(default: %(default)s)")
    p.add_argument("--num-workers", type=int, default=min(os.cpu_count() or 1, 8),
                   help="encoding processes (default: %(default)s)")
    p.add_argument("--force", action="store_true", help="replace a data set made with other settings")
    p.set_defaults(run=_run_synth)


def _run_synth(args) -> int:
    from videoml.data.synth import SynthConfig, generate

    config = SynthConfig(classes=args.classes, videos_per_class=args.videos_per_class, frames=args.frames, fps=args.fps,
                         width=args.size[0], height=args.size[1], codec=args.codec, gop=args.gop,
                         bframes=args.bframes, vfr=args.vfr, start_time=args.start_time, splits=args.splits,
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
    p = sub.add_parser("check", help="check that video files decode, and report what they hold",
                       description="For every file: decodable or not, codec, size, frames that really decode vs "
                                   "the header's count, fps from the time stamps, key frame spacing. "
                                   "Exit status 1 when any file is bad.")
    p.add_argument("paths", nargs="+", help="video files, folders (searched recursively) or glob patterns")
    p.add_argument("--format", choices=("table", "jsonl"), default="table", help="(default: %(default)s)")
    p.add_argument("--output", "-o", help="write the report here instead of standard output")
    p.add_argument("--num-workers", type=_positive_int, default=min(os.cpu_count() or 1, 8),
                   help="files checked in parallel (default: %(default)s)")
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
        records = check_videos(paths, args.num_workers)
        for record in tqdm(records, total=len(paths), unit="file", disable=not sys.stderr.isatty()):
            bad += not record["ok"]
            print(json.dumps(record) if args.format == "jsonl" else format_row(record), file=out, flush=True)
    finally:
        if args.output:
            out.close()
    print(f"{len(paths) - bad} of {len(paths)} files ok" + (f", {bad} bad" if bad else ""), file=sys.stderr)
    return 1 if bad else 0


# --- videoml bench decode -------------------------------------------------------------------------------------------


def _add_bench_decode(sub) -> None:
    from videoml.bench.decode import DecodeBench

    d = DecodeBench()
    p = sub.add_parser("decode", help="clip decoding per backend vs FFmpeg's ceiling and PyTorchVideo",
                       description="Single-threaded clip decoding on generated H.264 videos (made once under --data): "
                                   "random clips, 10-minute videos, multi-view testing, memory over many reads.")
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
    p.add_argument("--seed", type=int, default=d.seed)
    p.set_defaults(run=_run_bench_decode)


def _run_bench_decode(args) -> int:
    from videoml.bench.decode import DecodeBench, run, table, write

    unknown = [b for b in args.backends if b not in ("pyav", "decord", "torchcodec")]
    if unknown:
        raise UsageError(f"unknown backends {unknown} (known: pyav, decord, torchcodec)")
    bench = DecodeBench(data=args.data, out=args.out, backends=args.backends, frames=args.frames, stride=args.stride,
                        views=args.views, clips=args.clips, repeats=args.repeats, memory_reads=args.memory_reads,
                        pytorchvideo=args.pytorchvideo, seed=args.seed)
    results = run(bench)
    out = write(results, bench.out)
    print(table(results))
    print(f"\nresults in {out}/decode.json, {out}/decode.md")
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


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="videoml", description="Video understanding on PyTorchVideo.")
    parser.add_argument("--version", action="version", version=f"videoml {__version__}")
    parser.add_argument("--debug", "-v", action="store_true", help="show tracebacks for errors")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for name in LIGHTNING_COMMANDS:  # listed for --help; handled by LightningCLI (see main)
        commands.add_parser(name, help=f"{name} with Lightning: videoml {name} --config configs/....yaml "
                                       f"(see videoml {name} --help)")

    data = commands.add_parser("data", help="make and check video data sets")
    data_commands = data.add_subparsers(title="commands", metavar="COMMAND", required=True)
    _add_synth(data_commands)
    _add_check(data_commands)

    bench = commands.add_parser("bench", help="benchmarks")
    bench_commands = bench.add_subparsers(title="commands", metavar="COMMAND", required=True)
    _add_bench_decode(bench_commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if a not in DEBUG_FLAGS), None)
    if command in LIGHTNING_COMMANDS:  # LightningCLI parses these itself (configs, overrides, --help)
        position = argv.index(command)
        return _run_lightning(argv[position:], debug=position > 0)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (VideomlError, OSError) as e:
        return _report(e, args.debug)
    except KeyboardInterrupt:
        print("videoml: interrupted", file=sys.stderr)
        return 130
