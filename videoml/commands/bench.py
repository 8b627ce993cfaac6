"""``videoml bench decode|model|infer|suite|compare``."""

from __future__ import annotations

import sys
from pathlib import Path

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
