"""``videoml bench decode|model|infer|suite|compare``."""

from __future__ import annotations

import importlib
from pathlib import Path

from videoml.bench.decode import DecodeBench
from videoml.bench.infer import InferBench
from videoml.bench.model import ModelBench
from videoml.bench.suite import SuiteConfig


def _run(bench, name: str) -> int:
    """Run the benchmark of ``videoml.bench.<name>``, write its results, print its table."""
    module = importlib.import_module(f"videoml.bench.{name}")
    results = module.run(bench)
    out = module.write(results, bench.out)
    print(module.table(results))
    print(f"\nresults in {out}/{name}.json, {out}/{name}.md")
    return 0


def decode(bench: DecodeBench) -> int:
    """Single-threaded clip decoding on generated H.264 videos (made once under --data): random clips, 10-minute
    videos, real files of the conformance corpus, multi-view testing, memory over many reads, training samples on
    original and prepared data."""
    return _run(bench, "decode")


def model(bench: ModelBench) -> int:
    """Clips/s of registry models (random clips at their canonical input, on the device) per mode: memory format,
    precision, torch.compile. Modes are written like fp32, cl3d, cl3d+bf16, cl3d+compile, bf16+compile
    (cl3d = channels_last_3d); ratios are against the first."""
    from videoml.bench.model import Mode
    from videoml.models.registry import model_entry

    for name in bench.models:
        model_entry(name)  # unknown names fail before anything runs
    for mode in bench.modes:
        Mode.parse(mode)
    return suite(bench.suite(), bench.out)


def infer(bench: InferBench) -> int:
    """Videos/s and clips/s of `videoml infer`, of PyTorchVideo's inference tutorial loop (one get_clip and one
    model call per view) and of the model alone, on the same generated videos, model and views."""
    return _run(bench, "infer")


def suite(config: SuiteConfig, out: str | None = None, only_frameworks: list[str] | None = None) -> int:
    """Run a benchmark suite (--config configs/bench/*.yaml): one process per framework, ceilings measured first;
    writes runs/*.json, suite.json, table.md and plots into --out.

    Args:
        out: results folder (default: runs/bench/<suite name>).
        only_frameworks: run only these of the suite's frameworks (torch, tf), e.g. one per environment.
    """
    from videoml.bench import suite as runner

    config.check("suite config")
    out = str(out or f"runs/bench/{config.name}")
    summary = runner.run(config, out, only_frameworks)
    print((Path(out) / "table.md").read_text())
    print(f"results in {out}: suite.json, table.md, throughput.png, stages.png, scaling.png, runs/ "
          f"({len(summary['rows'])} runs)")
    return 0


def compare(a: str, b: str) -> int:
    """Runs present in both folders: clips/s, the ratio B/A, and whether the change is beyond the noise (the 95%
    intervals of the medians do not overlap).

    Args:
        a: results folder A (the reference).
        b: results folder B.
    """
    from videoml.bench.report import compare as side_by_side

    text, _ = side_by_side(a, b)
    print(text)
    return 0
