"""``videoml bench decode|model|infer|shards|suite|compare|plan``."""

from __future__ import annotations

import sys
from pathlib import Path

from videoml.bench.plan import Workload
from videoml.bench.presets import DecodeBench, InferBench, ModelBench
from videoml.bench.suite import SuiteConfig


def decode(bench: DecodeBench) -> int:
    """Single-threaded clip decoding per backend on generated H.264 videos (made once under --data), against
    FFmpeg's own speed and PyTorchVideo: random clips from 10-s and 10-minute videos and from the conformance corpus's
    real files, open-read-close, multi-view testing, memory over many reads; training samples (CPU time) on
    original and prepared data. A preset of the suite: writes what every suite writes into --out."""
    return suite(bench.suite(), bench.out)


def model(bench: ModelBench) -> int:
    """Clips/s of registry models (random clips at their canonical input, on the device) per mode: memory format,
    precision, torch.compile. Modes are written like fp32, cl3d, cl3d+bf16, cl3d+compile, bf16+compile
    (cl3d = channels_last_3d); ratios are against the first. A preset of the suite."""
    return suite(bench.suite(), bench.out)


def infer(bench: InferBench) -> int:
    """Videos/s and clips/s of `videoml infer`, of PyTorchVideo's inference tutorial loop (one get_clip and one
    model call per view) and of the model alone, on the same generated videos, model and views. A preset of the
    suite."""
    return suite(bench.suite(), bench.out)


def shards(prepared: str, out: str = "runs/bench/shards", model: str = "x3d_tiny", workers: int = 2,
           batch_size: int = 8, latency_ms: list[float] = (0, 20), max_mb: float = 1, epochs: int = 3,
           seed: int = 0) -> int:
    """Training clips/s and CPU ms per clip from a folder of files and from shards, on the local disk and from an
    HTTP server on 127.0.0.1 answering each request after a latency (object storage over a network), with the
    requests each epoch makes; the same loader as training, no model.

    Args:
        prepared: a prepared data set (videoml data prepare); its training split is read.
        out: results folder: the shard sets (sets/), runs/*.json, table.md.
        model: the registry model whose input the clips are cut for.
        workers: decoding workers of the loader.
        batch_size: clips a batch.
        latency_ms: per-request latencies of the HTTP server, one pair of cells each.
        max_mb: the shards' size (videoml data shard --max-mb): 1 MB makes 7 shards of the demo's 7.3 MB; real
            sets take hundreds.
        epochs: timed epochs per cell (after one untimed): the median counts.
    """
    from videoml.bench.storage import run, table
    from videoml.fileio import write_atomic

    runs = run(prepared, out, model, workers, batch_size, list(latency_ms), max_mb, epochs, seed)
    text = table(runs)
    write_atomic(Path(out) / "table.md", text)
    print(text)
    print(f"results in {out}: table.md, runs/ ({len(runs)} runs)")
    return 0


def suite(config: SuiteConfig, out: str | None = None, only_frameworks: list[str] | None = None) -> int:
    """Run a benchmark suite (--config configs/bench/*.yaml): one process per framework, ceilings measured first;
    writes runs/*.json, suite.json, table.md and plots into --out.

    Args:
        out: results folder (default: runs/bench/<suite name>).
        only_frameworks: run only these of the suite's frameworks (torch, tf), e.g. one per environment.
    """
    from videoml.bench import suite as runner

    config.check(f"suite {config.name}")
    out = str(out or f"runs/bench/{config.name}")
    summary, written = runner.run(config, out, only_frameworks)
    print((Path(out) / "table.md").read_text())
    print(f"results in {out}: {', '.join(written)}, runs/ ({len(summary.runs)} runs)")
    return 0


def compare(a: str, b: str, out: str | None = None) -> int:
    """Runs present in both folders: clips/s, the ratio B/A, and whether the change is beyond the noise (the 95%
    intervals of the medians do not overlap).

    Args:
        a: results folder A (the reference).
        b: results folder B.
        out: also write the comparison as one self-contained HTML page here (with both folders' machines).
    """
    from videoml.bench.records import load_runs
    from videoml.bench.report import compare as side_by_side, html_page, machine_of
    from videoml.fileio import write_atomic

    text = side_by_side(a, b)
    print(text)
    if out:
        machines = {f"{folder}: {key}": value for folder in (a, b)
                    for key, value in machine_of(list(load_runs(folder).values())).items()}
        write_atomic(out, html_page(f"videoml bench compare {a} {b}", text, machine=machines))
        print(f"written: {out}", file=sys.stderr)
    return 0


def plan(results: list[str], work: Workload, out: str | None = None) -> int:
    """A capacity plan for a stated workload from measured rates: epoch time and the stage that bounds it (model,
    decoding, storage), the decoding cores per GPU the model needs, the storage bandwidth, and inference videos per
    hour per node. GPU rates come from a table of measured figures (each with its source) or, with --gpu measured,
    from the results' own device; decoding from the results' decode stage.

    Args:
        results: results folders of videoml bench (decode, model, suite), read together.
        out: also write the plan (Markdown) here.
    """
    from videoml.bench import plan as planner
    from videoml.bench.records import load_runs
    from videoml.fileio import write_atomic

    runs = [run for folder in results for run in load_runs(folder).values()]
    text = planner.plan(runs, work)
    print(text)
    if out:
        write_atomic(out, text)
    return 0
