"""A suite's results rendered: the Markdown table, the plots, and comparing two results folders
(``videoml bench compare A B``). The numbers and the diagnosis come from :mod:`videoml.bench.diagnose`."""

from __future__ import annotations

import base64
import html
import json
import os
from pathlib import Path

from videoml.bench.diagnose import Summary
from videoml.bench.records import Run, best, load_runs
from videoml.errors import VideomlError
from videoml.vocab import BenchStage, ModelStage, choices

# How each measured or derived value ``v`` of a run ``r`` is shown in the "versus" column of a stage's row.
_VERSUS = {
    "decode_ceiling_fraction": "{v:.0%} of FFmpeg ({r.derived[decode_ceiling_clips_per_s]:.1f})",
    "speedup_vs_pytorchvideo": "{v:.1f}x PyTorchVideo",
    "cpu_ms_per_clip": "{v:.2f} CPU ms/clip",
    "ratio_to_original": "{v:.2f}x the original's clips per CPU-s",
    "data_wait": "waits for data {v:.0%}",
    "pipeline_to_step": "{v:.2f} of the train step alone",
    "videos_per_s": "{v:.3g} videos/s",
    "clips_vs_model_only": "{v:.2f} of the model alone",
    "speedup_vs_eager": "{v:.2f}x the eager model",
    "ray_vs_local": "{v:.2f}x the local engine",
    "rss_growth_mb": "{v:+.1f} MB over {r.reads} reads (RSS {r.rss_mb:.0f} MB)",
    "bytes": "{mib:.1f} MiB",
}


def _cell(run: Run | None) -> str:
    if not run or not run.stats:
        return "–"
    low, high = run.stats["clips_per_s_ci95"]
    fraction = run.derived.get("compute_ceiling_fraction")
    return f"{run.clips_per_s:.1f} ± {(high - low) / 2:.1f}" + (f" ({_percent(fraction)})" if fraction is not None else "")


def _percent(fraction: float) -> str:
    return f"{fraction:.0%}" if fraction >= 0.095 else f"{fraction:.1%}"


def _detail(run: Run) -> str:
    cell = run.cell
    parts = [cell.framework, cell.mode, cell.backend, cell.stage if cell.kind == "infer" else None,
             f"{cell.workers} workers" if cell.workers is not None else None,
             f"{cell.videos} videos" if cell.videos not in (None, "web") else None,
             f"{cell.data} data" if cell.data not in (None, "original") else None,
             f"{cell.clips_per_video} clips/video" if (cell.clips_per_video or 1) != 1 else None]
    return ", ".join(str(p) for p in parts if p is not None)


def _versus(run: Run) -> str:
    values = run.row()  # what was measured and what was derived
    return "; ".join(shown.format(r=run, v=values[key], mib=values[key] / 2**20) for key, shown in _VERSUS.items()
                     if values.get(key) is not None)


def _model_tables(summary: Summary) -> list[str]:
    """Per stage and batch size: rows = framework / mode, columns = models; clips/s, then the first call's seconds
    (start-up: tracing, compiling) in a table of its own."""
    config, lines = summary.config, []
    for stage in ("train_step", "fit_step", "forward"):
        for batch in config["batch_sizes"]:
            found = [r for r in summary.runs if r.matches(kind="model", stage=stage, batch_size=batch)]
            if found:
                lines += _grid(f"{stage}, batch {batch}", found, config, _cell)
            if any(r.first_call_s is not None for r in found):
                lines += _grid(f"{stage}, batch {batch}: first call, s (start-up)", found, config,
                               lambda r: f"{r.first_call_s:.2f}" if r and r.first_call_s is not None else "–")
    return lines


def _grid(title: str, found: list[Run], config: dict, shown) -> list[str]:
    lines = [f"## {title}", "", "| framework / mode | " + " | ".join(config["models"]) + " |",
             "|---|" + "---|" * len(config["models"])]
    for framework, modes in config["frameworks"].items():
        lines += [f"| {framework} {mode} | " + " | ".join(
            shown(best(found, framework=framework, mode=mode, model=m)) for m in config["models"]) + " |"
            for mode in modes]
    return lines + [""]


def _peak_lines(peaks: dict) -> list[str]:
    """Per precision: the measured peak and the kernel that reached it, the theoretical figure and its basis."""
    lines = ["| precision | measured peak, GFLOP/s | kernel | theoretical, GFLOP/s | measured / theoretical |",
             "|---|---|---|---|---|"]
    for precision, peak in peaks.items():
        theory = peak.get("theoretical")
        if theory:
            per_cycle = theory["flops_per_cycle_per_core"] * theory["cores"]
            implied = f"implies ≥ {peak['flops_per_s'] / per_cycle / 1e9:.2f} GHz"  # the clock the measured peak needs
        if theory and theory["flops_per_s"]:
            figure = (f"{theory['flops_per_s'] / 1e9:.0f} ({theory['basis']}, x {theory['cores']} cores x "
                      f"{theory['clock_ghz']:.2f} GHz, the stated clock)")
            ratio = f"{peak['flops_per_s'] / theory['flops_per_s']:.0%}"
            if peak["flops_per_s"] > theory["flops_per_s"]:  # a virtual machine states the base clock, not the boost
                ratio += f": the cores run above the stated clock ({implied})"
        elif theory:  # the clock is hidden: the one the measured peak implies
            figure = (f"{per_cycle} FLOPs per cycle ({theory['basis']}, x {theory['cores']} cores); clock not exposed")
            ratio = implied
        else:
            figure, ratio = "–", "–"
        lines.append(f"| {precision} | {peak['flops_per_s'] / 1e9:.1f} | {peak['kernel']} | {figure} | {ratio} |")
    return lines


def _ceiling_lines(summary: Summary) -> list[str]:
    """The peaks per precision, and each model's best mode per stage as a fraction of the peak of its precision."""
    ceilings = summary.ceilings
    lines = ["## compute ceiling", "", "The percentages in the tables above: the cell's FLOPs per second (FLOPs per "
             "clip, a multiply-add counted as 2; a train step 3x the forward) over the measured peak of its "
             "precision.", "", *_peak_lines(ceilings["peaks"]), "",
             "| model | GFLOPs/clip | stage | best | GFLOP/s | fraction of peak |", "|---|---|---|---|---|---|"]
    for model in summary.config["models"]:
        for stage in choices(ModelStage):
            for framework in summary.config["frameworks"]:
                top = best(summary.runs, kind="model", framework=framework, model=model, stage=stage)
                if top and "compute_ceiling_fraction" in top.derived:
                    lines.append(f"| {model} | {ceilings['flops_per_clip'][model] / 1e9:.3f} | {stage} | "
                                 f"{framework} {top.cell.mode} | {top.derived['achieved_flops_per_s'] / 1e9:.1f} | "
                                 f"{top.derived['compute_ceiling_fraction']:.1%} of {top.cell.precision} |")
    return lines


def table(summary: Summary) -> str:
    """The seed's shape: rows = framework / mode, columns = models, clips/s ± half the 95 % interval; one table
    per stage and batch size; then every other stage's rows (throughput in its unit, what it is held against), the
    compute ceilings and the notes."""
    config, runs = summary.config, summary.runs
    lines = [f"# {config['name']}: clips/s ({config['device']}, {config['threads']} threads)", ""]
    lines += _model_tables(summary)
    others = sorted((r for r in runs if r.cell.kind != "model"), key=lambda r: (choices(BenchStage).index(r.cell.kind), r.name))
    if others:
        lines += ["## data, reading and inference stages", "", "| stage | model | detail | per second | ms per unit | "
                  "versus |", "|---|---|---|---|---|---|"]
        lines += [f"| {r.cell.kind} | {r.cell.model or ''} | {_detail(r)} | "
                  f"{_cell(r) + f' {r.unit}s' if r.stats else '–'} | "
                  f"{format(r.stats['ms_per_clip'], '.4g') if r.stats else '–'} | {_versus(r)} |" for r in others]
        lines.append("")
    lines += _ceiling_lines(summary) if any(r.cell.kind == "model" for r in runs) else []
    lines += ["", "## notes", ""] + [f"- {n}" for n in summary.notes]
    return "\n".join(lines) + "\n"


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _throughput_plot(summary: Summary, path: Path) -> Path:
    """clips/s per model, framework and mode, train step and forward, at the first batch size; the error bars are the
    95 % intervals of the medians (the table's ±)."""
    import matplotlib.pyplot as plt

    config = summary.config
    models, batch = config["models"], config["batch_sizes"][0]
    variants = [(f, m) for f, modes in config["frameworks"].items() for m in modes]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, stage in zip(axes, ("train_step", "forward")):
        width = 0.8 / max(len(variants), 1)
        for i, (framework, mode) in enumerate(variants):
            found = [best(summary.runs, kind="model", stage=stage, framework=framework, mode=mode, model=m,
                          batch_size=batch) for m in models]
            rates = [r.clips_per_s if r else 0 for r in found]
            intervals = [r.stats["clips_per_s_ci95"] if r and r.stats else (0, 0) for r in found]
            ax.bar([k + i * width for k in range(len(models))], rates, width, label=f"{framework} {mode}",
                   yerr=[[max(rate - low, 0) for rate, (low, _) in zip(rates, intervals)],
                         [max(high - rate, 0) for rate, (_, high) in zip(rates, intervals)]], capsize=3)
        ax.set_xticks([k + 0.4 - width / 2 for k in range(len(models))], models)
        ax.set_title(f"{stage}, batch {batch}")
        ax.set_ylabel("clips/s")
    axes[0].legend(fontsize=8)
    return _save(fig, path)


def _stages_plot(summary: Summary, path: Path) -> Path:
    """Per model, what one clip costs in each stage of training and of inference (PyTorch, best mode / backend)."""
    import matplotlib.pyplot as plt

    models = summary.config["models"]
    fig, ax = plt.subplots(figsize=(8, 1 + 1.0 * len(models)))
    colours = dict(zip(("decode", "transform", "h2d", "train_step", "forward"), plt.cm.tab10.colors))
    labels, seen = [], set()
    for model in models:
        for last in ("train_step", "forward"):
            left, k = 0.0, len(labels)
            labels.append(f"{model} {'training' if last == 'train_step' else 'inference'}")
            for stage in ("decode", "transform", "h2d", last):
                match = dict(kind="model", stage=stage, framework="torch") if stage == last else dict(kind=stage)
                found = best(summary.runs, model=model, **match)
                if found:
                    ax.barh(k, found.stats["ms_per_clip"], left=left, color=colours[stage],
                            label=None if stage in seen else stage)
                    seen.add(stage)
                    left += found.stats["ms_per_clip"]
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("ms per clip, one core per stage (PyTorch, best mode / backend)")
    ax.legend(fontsize=8)
    return _save(fig, path)


def _scaling_plot(summary: Summary, path: Path) -> Path:
    """Train-step clips/s against batch size, and the pipeline against loader workers."""
    import matplotlib.pyplot as plt

    config = summary.config
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for framework, modes in config["frameworks"].items():
        for mode in modes:
            for model in config["models"]:
                same = [r for r in summary.runs if r.matches(framework=framework, mode=mode, model=model)]
                for ax, kind, x in ((axes[0], "model", "batch_size"), (axes[1], "pipeline", "workers")):
                    points = sorted((getattr(r.cell, x), r.clips_per_s) for r in same if r.cell.kind == kind and
                                    r.cell.stage in (None, "train_step"))
                    if points:
                        ax.plot(*zip(*points), marker="o", label=f"{model} {framework} {mode}")
    axes[0].set(xlabel="batch size", ylabel="train step clips/s", title="scaling with batch size")
    axes[1].set(xlabel="loader workers", ylabel="pipeline clips/s", title="data -> model pipeline")
    for ax in axes:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    return _save(fig, path)


def plots(summary: Summary, out: Path) -> list[Path]:
    """throughput.png, stages.png and scaling.png, when the suite measured models."""
    import matplotlib

    matplotlib.use("Agg")
    if not any(r.cell.kind == "model" for r in summary.runs):
        return []
    return [_throughput_plot(summary, out / "throughput.png"), _stages_plot(summary, out / "stages.png"),
            _scaling_plot(summary, out / "scaling.png")]


def write(summary: Summary, out: Path) -> list[str]:
    """suite.json, table.md, the plots and report.html (all of them in one page); the names of the files written."""
    (out / "suite.json").write_text(json.dumps(summary.as_json(), indent=2) + "\n")
    text = table(summary)
    (out / "table.md").write_text(text)
    pictures = plots(summary, out)
    (out / "report.html").write_text(html_page(f"videoml bench: {summary.config.get('name', 'suite')}", text,
                                               pictures, machine_of(summary.runs)))
    return ["suite.json", "table.md", *(p.name for p in pictures), "report.html"]


def machine_of(runs: list[Run]) -> dict:
    """Where the runs were measured (the first run's machine, versions and commit)."""
    first = next(iter(runs), None)
    if first is None:
        return {}
    return {**first.machine, "framework": f"{first.framework.get('name')} {first.framework.get('version')}",
            "commit": f"{first.commit}{' (dirty)' if first.dirty else ''}"}


PAGE_STYLE = ("body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}"
              "table{border-collapse:collapse;margin:1em 0;font-size:14px}th,td{border:1px solid #ccc;"
              "padding:4px 8px;text-align:left}th{background:#f3f3f3}img{max-width:100%;margin:1em 0}"
              "dl{display:grid;grid-template-columns:max-content auto;gap:2px 12px;font-size:14px}dt{font-weight:600}")


def html_page(title: str, markdown: str, pictures: list[Path] = (), machine: dict | None = None) -> str:
    """One self-contained HTML page: the markdown report rendered (markdown-it, tables on), the pictures inline, and
    where it was measured. Opens in any browser, offline, as a single file."""
    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark").enable("table").render(markdown)
    images = "".join(f'<figure><img alt="{p.name}" src="data:image/png;base64,'
                     f'{base64.b64encode(p.read_bytes()).decode()}"><figcaption>{p.name}</figcaption></figure>'
                     for p in pictures)
    where = "".join(f"<dt>{html.escape(str(k))}</dt><dd>{html.escape(str(v))}</dd>" for k, v in (machine or {}).items()
                    if v not in (None, "", []))
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{PAGE_STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
            + (f"<h2>machine</h2><dl>{where}</dl>" if where else "") + body + images + "</body></html>\n")


def compare(a: str | os.PathLike, b: str | os.PathLike) -> str:
    """Timed runs present in both folders side by side: clips/s, the ratio B/A, and whether the 95 % intervals of
    the medians overlap (within the noise) or not (changed)."""
    runs_a, runs_b = load_runs(a), load_runs(b)
    shared = [n for n in runs_a if n in runs_b and runs_a[n].stats and runs_b[n].stats]
    if not shared:
        raise VideomlError(f"{a} and {b} have no timed run in common")
    lines = [f"| run | {a} per second | {b} per second | B/A | |", "|---|---|---|---|---|"]
    for name in shared:
        (low_a, high_a), (low_b, high_b) = runs_a[name].stats["clips_per_s_ci95"], runs_b[name].stats["clips_per_s_ci95"]
        ratio = runs_b[name].clips_per_s / runs_a[name].clips_per_s
        verdict = "within noise" if low_a <= high_b and low_b <= high_a else ("faster" if ratio > 1 else "slower")
        lines.append(f"| {name} | {runs_a[name].clips_per_s:.2f} | {runs_b[name].clips_per_s:.2f} | {ratio:.2f}x | "
                     f"{verdict} |")
    only = sorted(set(runs_a) ^ set(runs_b))
    if only:
        lines += ["", f"in one folder only: {', '.join(only)}"]
    return "\n".join(lines) + "\n"
