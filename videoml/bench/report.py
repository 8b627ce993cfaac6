"""A suite's results: the summary (with ceilings and a diagnosis), the Markdown table, the plots, and comparing
two results folders (``videoml bench compare A B``)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from videoml.bench.ceilings import TRAIN_FLOPS_FACTOR
from videoml.errors import VideomlError
from videoml.models.registry import model_input


def load_runs(folder: str | os.PathLike) -> dict[str, dict]:
    runs = sorted(Path(folder, "runs").glob("*.json"))
    if not runs:
        raise VideomlError(f"{folder}: no benchmark runs (runs/*.json)")
    return {r["name"]: r for r in (json.loads(p.read_text()) for p in runs)}


def _compute_fraction(run: dict, ceilings: dict) -> float | None:
    cell = run["cell"]
    flops = ceilings["flops_per_clip"].get(cell.get("model"))
    if cell["kind"] != "model" or not flops:
        return None
    per_clip = flops * (TRAIN_FLOPS_FACTOR if cell["stage"] == "train_step" else 1)
    return run["stats"]["clips_per_s"] * per_clip / ceilings["matmul"]["flops_per_s"]


def summarize_suite(folder: Path, config: dict, ceilings: dict) -> dict:
    runs = load_runs(folder)
    rows = []
    for name, run in runs.items():
        row = {"name": name, **run["cell"], "clips_per_s": run["stats"]["clips_per_s"],
               "clips_per_s_ci95": run["stats"]["clips_per_s_ci95"], "spread": run["stats"]["spread"],
               "ms_per_clip": run["stats"]["ms_per_clip"]}
        fraction = _compute_fraction(run, ceilings)
        if fraction is not None:
            row["compute_ceiling_fraction"] = fraction
        if run.get("ceiling"):
            row["decode_ceiling_clips_per_s"] = run["ceiling"]["clips_per_s"]
            row["decode_ceiling_fraction"] = row["clips_per_s"] / run["ceiling"]["clips_per_s"]
            row["frames_decoded_per_clip"] = run["ceiling"]["frames_decoded_per_clip"]
        if "data_wait" in run:
            row["data_wait"] = run["data_wait"]
        if "cpu_ms_per_clip" in run:
            row["cpu_ms_per_clip"] = run["cpu_ms_per_clip"]
        if run.get("peak_memory_mb") is not None:
            row["peak_memory_mb"] = run["peak_memory_mb"]
        if run.get("operators"):
            row["operators"] = run["operators"]
        rows.append(row)
    for row in rows:  # end to end against the same train step alone: what the data path leaves of the model's speed
        step = row["kind"] == "pipeline" and _best(rows, kind="model", stage="train_step", model=row["model"],
                                                   framework=row["framework"], batch_size=row["batch_size"])
        if step:
            row["pipeline_to_step"] = row["clips_per_s"] / step["clips_per_s"]
    summary = {"config": config, "ceilings": ceilings, "rows": rows}
    summary["notes"] = diagnose(summary)
    return summary


def _best(rows, **match) -> dict | None:
    found = [r for r in rows if all(r.get(k) == v for k, v in match.items())]
    return max(found, key=lambda r: r["clips_per_s"]) if found else None


_HEAVY = ("conv", "mm", "matmul", "linear", "addmm", "bmm")


def _where_torch_spends(operators: list) -> str:
    """Why a PyTorch step is slow, from its profile: the share of time outside convolutions and matrix products
    (separate elementwise passes over the activations, which TensorFlow's graph optimiser fuses into them)."""
    shown = ", ".join(f"{name} {share:.0%}" for name, share in operators)
    heavy = sum(share for name, share in operators if any(h in name.lower() for h in _HEAVY))
    text = f"PyTorch's step: {shown}"
    if heavy < 0.8:
        text += (f"; {1 - heavy:.0%} of it outside convolutions and matrix products, in separate passes "
                 "(BatchNorm, activations, residual adds) that TensorFlow's graph optimiser fuses into the "
                 "convolutions: compare the compile mode")
    return text


def diagnose(summary: dict) -> list[str]:
    """Plain-language findings computed from the numbers: who wins per model and stage, where pipelines wait for
    data and what would help, how far each model stands from the compute ceiling."""
    rows, notes = summary["rows"], []
    models = summary["config"]["models"]
    cores = os.cpu_count() or 1
    for model in models:
        for stage in ("forward", "train_step"):
            torch_best = _best(rows, kind="model", framework="torch", model=model, stage=stage)
            tf_best = _best(rows, kind="model", framework="tf", model=model, stage=stage)
            if torch_best and tf_best:
                ratio = torch_best["clips_per_s"] / tf_best["clips_per_s"]
                verdict = "PyTorch leads" if ratio >= 1 else "TensorFlow leads"
                note = (f"{model} {stage}: {verdict}, best modes torch {torch_best['mode']} "
                        f"{torch_best['clips_per_s']:.1f} vs tf {tf_best['mode']} {tf_best['clips_per_s']:.1f} "
                        f"clips/s ({ratio:.2f}x)")
                if ratio < 1 and torch_best.get("operators"):
                    note += "; " + _where_torch_spends(torch_best["operators"])
                notes.append(note)
            if torch_best and "compute_ceiling_fraction" in torch_best:
                notes.append(f"{model} {stage}: torch {torch_best['mode']} reaches "
                             f"{torch_best['compute_ceiling_fraction']:.0%} of the matmul peak")
        decode = _best(rows, kind="decode", model=model)
        for pipeline in (r for r in rows if r["kind"] == "pipeline" and r["model"] == model):
            wait = pipeline.get("data_wait", 0.0)
            text = (f"{model} pipeline ({pipeline['framework']}, {pipeline['workers']} workers): "
                    f"{pipeline['clips_per_s']:.1f} clips/s, waiting for data {wait:.0%} of the time")
            step = _best(rows, kind="model", framework=pipeline["framework"], model=model, stage="train_step",
                         mode=pipeline["mode"])
            if wait > 0.2 and decode:
                per_worker = decode["clips_per_s"]
                needed = math.ceil(step["clips_per_s"] / per_worker) if step else None
                advice = []
                if needed and needed <= pipeline["workers"]:
                    advice.append(f"decoding alone would keep up ({pipeline['workers']} worker(s) decode "
                                  f"{pipeline['workers'] * per_worker:.1f} clips/s against "
                                  f"{step['clips_per_s']:.1f} needed), so the loader's own overhead is the limit "
                                  "(loading in threads, as tf.data's Python functions do, shares the GIL and the "
                                  "cores with the training loop)")
                elif needed and needed <= cores:
                    advice.append(f"use {needed} loader workers (one decodes {per_worker:.1f} clips/s, the step "
                                  f"takes {step['clips_per_s']:.1f})")
                elif needed:
                    advice.append(f"{needed} workers would be needed but there are {cores} cores: decode at a "
                                  "lower resolution or use a faster backend")
                if decode.get("decode_ceiling_fraction", 1) < 0.5:
                    advice.append(f"the {decode['backend']} reader reaches {decode['decode_ceiling_fraction']:.0%} "
                                  "of FFmpeg's speed on these files: try another backend")
                frames, spec = decode.get("frames_decoded_per_clip"), model_input(model)
                span = (spec.frames - 1) * spec.stride + 1
                if frames and frames > 2 * span:
                    advice.append(f"each clip decodes {frames:.0f} frames (from the key frame before it) for a "
                                  f"span of {span}: prepare the data (videoml data prepare) for shorter GOPs")
                text += "; data-bound" + (": " + "; ".join(advice) if advice else "")
            elif wait <= 0.2:
                text += "; not waiting for data"
                if step and pipeline["clips_per_s"] < 0.7 * step["clips_per_s"]:
                    text += (f", but the train step runs at {pipeline['clips_per_s'] / step['clips_per_s']:.0%} "
                             f"of its speed alone: the loader workers compete with it for the {cores} cores "
                             "(more cores, or cheaper decoding: videoml data prepare, data.clips_per_video)")
                else:
                    text += ": the model is the limit (a faster execution mode or device helps, more workers do not)"
            notes.append(text)
    return notes


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
                best = _best(rows, kind="model", framework=framework, model=model, stage=stage)
                if best and "compute_ceiling_fraction" in best:
                    lines.append(f"| {model} | {ceilings['flops_per_clip'][model] / 1e9:.3f} | {stage} | "
                                 f"{framework} {best['mode']} | {best['compute_ceiling_fraction']:.1%} |")
    lines += ["", "## notes", ""] + [f"- {n}" for n in summary["notes"]]
    return "\n".join(lines) + "\n"


def plots(summary: dict, out: Path) -> list[Path]:
    """throughput.png (clips/s per model, framework and mode), stages.png (ms per clip per stage and model),
    scaling.png (clips/s against batch size, and the pipeline against loader workers)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, config = summary["rows"], summary["config"]
    models, written = config["models"], []
    variants = [(f, m) for f, modes in config["frameworks"].items() for m in modes]
    batch = config["batch_sizes"][0]

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
    fig.tight_layout()
    written.append(out / "throughput.png")
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)

    # per model, what one clip costs in each stage of training and of inference (PyTorch, best mode / backend)
    fig, ax = plt.subplots(figsize=(8, 1 + 1.0 * len(models)))
    colours = dict(zip(("decode", "transform", "h2d", "train_step", "forward"), plt.cm.tab10.colors))
    labels, seen = [], set()
    for model in models:
        for last in ("train_step", "forward"):
            left, k = 0.0, len(labels)
            labels.append(f"{model} {'training' if last == 'train_step' else 'inference'}")
            for stage in ("decode", "transform", "h2d", last):
                match = dict(kind="model", stage=stage, framework="torch") if stage == last else dict(kind=stage)
                best = _best(rows, model=model, **match)
                if best:
                    ax.barh(k, best["ms_per_clip"], left=left, color=colours[stage],
                            label=None if stage in seen else stage)
                    seen.add(stage)
                    left += best["ms_per_clip"]
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("ms per clip, one core per stage (PyTorch, best mode / backend)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    written.append(out / "stages.png")
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for framework, mode in variants:
        for model in models:
            points = sorted((r["batch_size"], r["clips_per_s"]) for r in rows if r["kind"] == "model" and
                            r["stage"] == "train_step" and r["framework"] == framework and r["mode"] == mode and
                            r["model"] == model)
            if points:
                axes[0].plot(*zip(*points), marker="o", label=f"{model} {framework} {mode}")
            points = sorted((r["workers"], r["clips_per_s"]) for r in rows if r["kind"] == "pipeline" and
                            r["framework"] == framework and r["mode"] == mode and r["model"] == model)
            if points:
                axes[1].plot(*zip(*points), marker="o", label=f"{model} {framework} {mode}")
    axes[0].set(xlabel="batch size", ylabel="train step clips/s", title="scaling with batch size")
    axes[1].set(xlabel="loader workers", ylabel="pipeline clips/s", title="data -> model pipeline")
    for ax in axes:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    written.append(out / "scaling.png")
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)
    return written


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
