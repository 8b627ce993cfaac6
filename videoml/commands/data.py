"""``videoml data synth|check|prepare|shard|corpus|conformance``."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Literal

from jsonargparse.typing import NonNegativeFloat, PositiveFloat, PositiveInt

from videoml.data.decoding.budget import DEFAULT_SECONDS, Seconds
from videoml.data.prepare import PrepareConfig
from videoml.data.synth import SynthConfig
from videoml.errors import UsageError
from videoml.vocab import Backend, choices

WORKERS = min(os.cpu_count() or 1, 8)


def synth(dataset: SynthConfig, out: str = "data/synth", num_workers: PositiveInt = WORKERS,
          force: bool = False) -> int:
    """Generate videos whose class is decided by motion alone (see data/README.md), with split files in
    PyTorchVideo's labeled-paths format.

    Args:
        out: output directory.
        num_workers: encoding processes.
        force: replace a data set made with other settings.
    """
    from videoml.data.synth import generate

    made = generate(dataset, out, num_workers=num_workers, force=force, progress=sys.stderr.isatty())
    counts = {s: sum(1 for _ in open(made.split_file(s))) for s in ("train", "val", "test")}
    print(f"synthetic data set in {made.root}: {len(dataset.classes)} classes, "
          + ", ".join(f"{n} {s}" for s, n in counts.items())
          + f" ({dataset.codec}, {dataset.frames} frames at {dataset.fps} fps, {dataset.width}x{dataset.height})")
    return 0


def check(paths: list[str], format: Literal["table", "jsonl"] = "table", out: str | None = None,
          num_workers: PositiveInt = WORKERS, decode_timeout: Seconds = DEFAULT_SECONDS) -> int:
    """For every file: ok, warn (it reads, with something to act on) or bad (it does not), codec, size, frames that
    really decode vs the header's count, fps from the time stamps, key frame spacing. Exit status 1 when any file is
    bad.

    Args:
        paths: video files, folders (searched recursively) or glob patterns.
        format: a table, or one JSON record per file.
        out: write the report here instead of standard output.
        num_workers: files checked in parallel.
        decode_timeout: seconds; a file that takes longer to check is reported bad.
    """
    from tqdm.auto import tqdm

    from videoml.data.check import TABLE_HEADER, check_videos, format_row, summary
    from videoml.data.files import find_videos

    found = find_videos(paths)
    if not found:
        raise UsageError(f"no video files in {', '.join(paths)}" if paths else "no paths to check")
    report = open(out, "w") if out else sys.stdout
    records = []
    try:
        if format == "table":
            print(TABLE_HEADER, file=report)
        for record in tqdm(check_videos(found, num_workers, decode_timeout), total=len(found), unit="file",
                           disable=not sys.stderr.isatty()):
            records.append(record)
            print(json.dumps(record) if format == "jsonl" else format_row(record), file=report, flush=True)
    finally:
        if out:
            report.close()
    print(summary(records), file=sys.stderr)
    return 1 if any(r["status"] == "bad" for r in records) else 0


def prepare(src: str, dst: str, settings: PrepareConfig, num_workers: PositiveInt = WORKERS,
            decode_timeout: Seconds = DEFAULT_SECONDS, max_bad_fraction: NonNegativeFloat = 0.05,
            force: bool = False) -> int:
    """Re-encode every video of SRC (a fit config's data sources, a labeled-paths file, a folder with
    train/val/test.csv, or a <class>/<video> folder) into DST: short side scaled down, short fixed GOPs, unreferenced
    B-frames, no deblocking, no audio; split files rewritten to the new paths, frame indices cached. Resumable: run
    it again to go on after a kill. Exit status 3 when some sources could not be prepared (listed in DST/bad.txt),
    1 when more than max_bad_fraction.

    Args:
        src: the data set to prepare.
        dst: output folder.
        num_workers: videos encoded in parallel.
        decode_timeout: seconds; a video that takes longer is listed as bad.
        max_bad_fraction: fail when more sources than this fraction are bad.
        force: replace a prepared set made with other settings.
    """
    from videoml.data.prepare import prepare as run

    summary = run(src, dst, settings, num_workers=num_workers, timeout=decode_timeout, max_bad_fraction=max_bad_fraction,
                  force=force, progress=sys.stderr.isatty())
    for record in summary.bad:
        print(f"bad: {record['source']}: {record['error']}", file=sys.stderr)
    print(summary.line(), file=sys.stderr)
    for split in summary.splits:
        print(f"data.{split}: {{kind: labeled_paths, path: {Path(dst) / f'{split}.csv'}}}")
    return 3 if summary.bad else 0


def shard(prepared: str, out: str, max_mb: PositiveFloat = 256, part: str = "0/1") -> int:
    """Pack a prepared data set (videoml data prepare's output) into shards under OUT: tar files in WebDataset's
    layout (per sample its video, label and frame index) with OUT/manifest.json (classes, prepare settings, shards
    with their samples and SHA-256). Resumable: run it again to go on after a kill.

    Args:
        prepared: the prepared data set.
        out: output folder (local; upload it to object storage as it is).
        max_mb: close a shard once its videos reach this many MiB.
        part: I/N: pack only every N-th sample from the I-th, for job arrays (e.g. --part
            $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT into one OUT); the part that finishes last writes the
            manifest.
    """
    from videoml.data.shards import shard as run

    summary = run(prepared, out, max_mb=max_mb, part=part, progress=sys.stderr.isatty())
    print(summary.line(), file=sys.stderr)
    return 0


def corpus(dir: str | None = None) -> int:
    """Fetch (and cache) real sample videos from Debian packages (data/corpus/debian.json: package, version,
    checksum, licence, what each file exercises) and generated files for the classes no package ships. Prints one
    path per line.

    Args:
        dir: where the corpus is kept (default: $VIDEOML_CORPUS_DIR or ~/.cache/videoml/corpus).
    """
    from videoml.data.corpus import corpus as fetch

    for path in fetch(Path(dir) if dir else None):
        print(path)
    return 0


def conformance(paths: list[str] | None = None, backends: tuple[Backend, ...] = choices(Backend),
                autorotate: bool = True, jsonl: str | None = None,
                num_workers: PositiveInt = min(os.cpu_count() or 1, 4)) -> int:
    """For every file x backend: num_frames against FFmpeg's picture count, every frame in sequential calls, random
    frames, random clips and multi-view clips, each compared with the picture FFmpeg's command line decodes at that
    index. Prints a Markdown table (exact / refused with the reason / wrong with the first bad index); exit status 1
    if any is wrong.

    Args:
        paths: video files, folders or glob patterns (default: the corpus).
        backends: the backends compared (those installed).
        autorotate: compare pictures turned upright by display matrices (false: as stored).
        jsonl: also write one record per file x backend here.
        num_workers: files checked in parallel.
    """
    from videoml.data.conformance import conformance as compare, format_table
    from videoml.data.corpus import corpus as fetch, corpus_dir
    from videoml.data.decoding import backend_available
    from videoml.data.files import find_videos

    backends = tuple(b for b in backends if backend_available(b))
    files = find_videos(paths) if paths else fetch()
    verdicts = compare(files, backends, num_workers, autorotate)
    if jsonl:
        with open(jsonl, "w") as f:
            f.writelines(json.dumps(v.as_dict()) + "\n" for v in verdicts)
    print(format_table(verdicts, None if paths else corpus_dir()))
    counts = {status: sum(v.status == status for v in verdicts) for status in ("exact", "refused", "wrong")}
    print(", ".join(f"{n} {status}" for status, n in counts.items()) + f" ({len(files)} files x {len(backends)} "
          "backends)", file=sys.stderr)
    return 1 if counts["wrong"] else 0
