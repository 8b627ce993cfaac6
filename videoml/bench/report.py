"""A suite's results rendered: the Markdown table, the plots, and comparing two results folders
(``videoml bench compare A B``). The numbers and the diagnosis come from :mod:`videoml.bench.diagnose`."""

from __future__ import annotations

import json
import os
from pathlib import Path

from videoml.bench.diagnose import best, load_runs
from videoml.errors import VideomlError


def _cell(row: dict | None) -> str:
    if not row:
        return "–"
    low, high = row["clips_per_s_ci95"]
    return f"{row['clips_per_s']:.1f} ± {(high - low) / 2:.1f}"


def _data_detail(row: dict) -> str:
    detail = {"decode": row.get("backend"), "pipeline": f"{row.get('framework')} {row.get('mode')}, "
                                                        f"{row.get('workers')} workers"}.get(row["kind"], "")
    if row.get("data", "original") != "original" or row.get("clips_per_video", 1) != 1:
        detail += f", {row.get('data', 'original')} data, {row.get('clips_per_video', 1)} clips/video"
    return detail


def _data_limit(row: dict) -> str:
    parts = []
    if "decode_ceiling_fraction" in row:
        parts.append(f"{row['decode_ceiling_fraction']:.0%} of FFmpeg ({row['decode_ceiling_clips_per_s']:.1f})")
    if "cpu_ms_per_clip" in row:
        parts.append(f"{row['cpu_ms_per_clip']:.2f} CPU ms/clip")
    if "data_wait" in row:
        parts.append(f"waits for data {row['data_wait']:.0%}")
    if "pipeline_to_step" in row:
        parts.append(f"{row['pipeline_to_step']:.2f} of the train step alone")
    return "; ".join(parts)


def table(summary: dict) -> str:
    """The seed's shape: rows = framework / mode, columns = models, clips/s ± half the 95 % interval; one table
    per stage and batch size, then the data stages, the ceilings and the notes."""
    rows, config = summary["rows"], summary["config"]
    models = config["models"]
    lines = [f"# {config['name']}: clips/s ({config['device']}, {config['threads']} threads)", ""]
    for stage in ("train_step", "forward"):
        for batch in config["batch_sizes"]:
            found = [r for r in rows if r["kind"] == "model" and r["stage"] == stage and r["batch_size"] == batch]
            if not found:
                continue
            lines += [f"## {stage}, batch {batch}", "", "| framework / mode | " + " | ".join(models) + " |",
                      "|---|" + "---|" * len(models)]
            for framework, modes in config["frameworks"].items():
                for mode in modes:
                    cells = [_cell(next((r for r in found if r["framework"] == framework and r["mode"] == mode
                                         and r["model"] == m), None)) for m in models]
                    lines.append(f"| {framework} {mode} | " + " | ".join(cells) + " |")
            lines.append("")
    data_rows = [r for r in rows if r["kind"] in ("decode", "transform", "h2d", "pipeline")]
    if data_rows:
        lines += ["## data stages", "", "| stage | model | detail | clips/s | ms/clip | limit |", "|---|---|---|---|---|---|"]
        for r in data_rows:
            lines.append(f"| {r['kind']} | {r['model']} | {_data_detail(r)} | {_cell(r)} | {r['ms_per_clip']:.2f} | "
                         f"{_data_limit(r)} |")
        lines.append("")
    ceilings = summary["ceilings"]
    lines += ["## compute ceiling", "", f"matmul peak (float32, {ceilings['matmul']['size']}²): "
              f"{ceilings['matmul']['flops_per_s'] / 1e9:.1f} GFLOP/s", "",
              "| model | GFLOPs/clip | stage | best | fraction of peak |", "|---|---|---|---|---|"]
    for model in models:
        for stage in ("forward", "train_step"):
            for framework in config["frameworks"]:
                top = best(rows, kind="model", framework=framework, model=model, stage=stage)
                if top and "compute_ceiling_fraction" in top:
                    lines.append(f"| {model} | {ceilings['flops_per_clip'][model] / 1e9:.3f} | {stage} | "
                                 f"{framework} {top['mode']} | {top['compute_ceiling_fraction']:.1%} |")
    lines += ["", "## notes", ""] + [f"- {n}" for n in summary["notes"]]
    return "\n".join(lines) + "\n"


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _throughput_plot(summary: dict, path: Path) -> Path:
    """clips/s per model, framework and mode, train step and forward, at the first batch size."""
    import matplotlib.pyplot as plt

    rows, config = summary["rows"], summary["config"]
    models, batch = config["models"], config["batch_sizes"][0]
    variants = [(f, m) for f, modes in config["frameworks"].items() for m in modes]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, stage in zip(axes, ("train_step", "forward")):
        width = 0.8 / max(len(variants), 1)
        for i, (framework, mode) in enumerate(variants):
            values = [next((r["clips_per_s"] for r in rows if r["kind"] == "model" and r["stage"] == stage and
                            r["framework"] == framework and r["mode"] == mode and r["model"] == m and
                            r["batch_size"] == batch), 0) for m in models]
            ax.bar([k + i * width for k in range(len(models))], values, width, label=f"{framework} {mode}")
        ax.set_xticks([k + 0.4 - width / 2 for k in range(len(models))], models)
        ax.set_title(f"{stage}, batch {batch}")
        ax.set_ylabel("clips/s")
    axes[0].legend(fontsize=8)
    return _save(fig, path)


def _stages_plot(summary: dict, path: Path) -> Path:
    """Per model, what one clip costs in each stage of training and of inference (PyTorch, best mode / backend)."""
    import matplotlib.pyplot as plt

    rows, models = summary["rows"], summary["config"]["models"]
    fig, ax = plt.subplots(figsize=(8, 1 + 1.0 * len(models)))
    colours = dict(zip(("decode", "transform", "h2d", "train_step", "forward"), plt.cm.tab10.colors))
    labels, seen = [], set()
    for model in models:
        for last in ("train_step", "forward"):
            left, k = 0.0, len(labels)
            labels.append(f"{model} {'training' if last == 'train_step' else 'inference'}")
            for stage in ("decode", "transform", "h2d", last):
                match = dict(kind="model", stage=stage, framework="torch") if stage == last else dict(kind=stage)
                found = best(rows, model=model, **match)
                if found:
                    ax.barh(k, found["ms_per_clip"], left=left, color=colours[stage],
                            label=None if stage in seen else stage)
                    seen.add(stage)
                    left += found["ms_per_clip"]
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("ms per clip, one core per stage (PyTorch, best mode / backend)")
    ax.legend(fontsize=8)
    return _save(fig, path)


def _scaling_plot(summary: dict, path: Path) -> Path:
    """Train-step clips/s against batch size, and the pipeline against loader workers."""
    import matplotlib.pyplot as plt

    rows, config = summary["rows"], summary["config"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for framework, modes in config["frameworks"].items():
        for mode in modes:
            for model in config["models"]:
                same = [r for r in rows if r.get("framework") == framework and r.get("mode") == mode and
                        r["model"] == model]
                for ax, kind, x in ((axes[0], "model", "batch_size"), (axes[1], "pipeline", "workers")):
                    points = sorted((r[x], r["clips_per_s"]) for r in same if r["kind"] == kind and
                                    r.get("stage", "train_step") == "train_step")
                    if points:
                        ax.plot(*zip(*points), marker="o", label=f"{model} {framework} {mode}")
    axes[0].set(xlabel="batch size", ylabel="train step clips/s", title="scaling with batch size")
    axes[1].set(xlabel="loader workers", ylabel="pipeline clips/s", title="data -> model pipeline")
    for ax in axes:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    return _save(fig, path)


def plots(summary: dict, out: Path) -> list[Path]:
    """throughput.png, stages.png and scaling.png."""
    import matplotlib

    matplotlib.use("Agg")
    return [_throughput_plot(summary, out / "throughput.png"), _stages_plot(summary, out / "stages.png"),
            _scaling_plot(summary, out / "scaling.png")]


def write(summary: dict, out: Path) -> None:
    (out / "suite.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "table.md").write_text(table(summary))
    plots(summary, out)


def compare(a: str | os.PathLike, b: str | os.PathLike) -> tuple[str, list[dict]]:
    """Runs present in both folders side by side: clips/s, the ratio B/A, and whether the 95 % intervals of the
    medians overlap (within the noise) or not (changed)."""
    runs_a, runs_b = load_runs(a), load_runs(b)
    shared = [n for n in runs_a if n in runs_b]
    if not shared:
        raise VideomlError(f"{a} and {b} have no run in common")
    rows = []
    for name in shared:
        sa, sb = runs_a[name]["stats"], runs_b[name]["stats"]
        overlap = sa["clips_per_s_ci95"][0] <= sb["clips_per_s_ci95"][1] and \
            sb["clips_per_s_ci95"][0] <= sa["clips_per_s_ci95"][1]
        ratio = sb["clips_per_s"] / sa["clips_per_s"]
        rows.append({"name": name, "a": sa["clips_per_s"], "b": sb["clips_per_s"], "ratio": ratio,
                     "verdict": "within noise" if overlap else ("faster" if ratio > 1 else "slower")})
    lines = [f"| run | {a} clips/s | {b} clips/s | B/A | |", "|---|---|---|---|---|"]
    lines += [f"| {r['name']} | {r['a']:.2f} | {r['b']:.2f} | {r['ratio']:.2f}x | {r['verdict']} |" for r in rows]
    only = sorted(set(runs_a) ^ set(runs_b))
    if only:
        lines += ["", f"in one folder only: {', '.join(only)}"]
    return "\n".join(lines) + "\n", rows
