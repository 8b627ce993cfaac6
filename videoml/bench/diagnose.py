"""A suite's numbers turned into findings: the summary rows (with ceiling fractions, pipeline vs step) and the
plain-language diagnosis. Rendering (tables, plots, comparisons) is :mod:`videoml.bench.report`."""

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
        step = row["kind"] == "pipeline" and best(rows, kind="model", stage="train_step", model=row["model"],
                                                   framework=row["framework"], batch_size=row["batch_size"])
        if step:
            row["pipeline_to_step"] = row["clips_per_s"] / step["clips_per_s"]
    summary = {"config": config, "ceilings": ceilings, "rows": rows}
    summary["notes"] = diagnose(summary)
    return summary


def best(rows, **match) -> dict | None:
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


def _pipeline_note(rows: list[dict], pipeline: dict, decode: dict | None, cores: int) -> str:
    """Where a data -> model pipeline stands: waiting for data (and what would help) or not (and why)."""
    model = pipeline["model"]
    wait = pipeline.get("data_wait", 0.0)
    text = (f"{model} pipeline ({pipeline['framework']}, {pipeline['workers']} workers): "
            f"{pipeline['clips_per_s']:.1f} clips/s, waiting for data {wait:.0%} of the time")
    step = best(rows, kind="model", framework=pipeline["framework"], model=model, stage="train_step",
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
    return text


def _mode_notes(rows: list[dict], config: dict, model: str, stage: str) -> list[str]:
    """Each framework's modes against its first listed one, per batch size: what a mode is worth."""
    notes = []
    for framework, modes in config["frameworks"].items():
        for batch in config["batch_sizes"]:
            found = {m: best(rows, kind="model", framework=framework, model=model, stage=stage, mode=m,
                             batch_size=batch) for m in modes}
            if len(modes) < 2 or not found[modes[0]]:
                continue
            base = found[modes[0]]["clips_per_s"]
            ratios = [f"{m} {found[m]['clips_per_s'] / base:.2f}x" for m in modes[1:] if found[m]]
            notes.append(f"{model} {stage}, batch {batch}, {framework}: " + ", ".join(ratios)
                         + f" the clips/s of {modes[0]}")
    return notes


def diagnose(summary: dict) -> list[str]:
    """Plain-language findings computed from the numbers: who wins per model and stage, what each execution mode is
    worth against a framework's first, where pipelines wait for data and what would help, how far each model stands
    from the compute ceiling."""
    rows, notes = summary["rows"], []
    models = summary["config"]["models"]
    cores = os.cpu_count() or 1
    for model in models:
        for stage in ("forward", "train_step"):
            torch_best = best(rows, kind="model", framework="torch", model=model, stage=stage)
            tf_best = best(rows, kind="model", framework="tf", model=model, stage=stage)
            if torch_best and tf_best:
                ratio = torch_best["clips_per_s"] / tf_best["clips_per_s"]
                verdict = "PyTorch leads" if ratio >= 1 else "TensorFlow leads"
                note = (f"{model} {stage}: {verdict}, best modes torch {torch_best['mode']} "
                        f"{torch_best['clips_per_s']:.1f} vs tf {tf_best['mode']} {tf_best['clips_per_s']:.1f} "
                        f"clips/s ({ratio:.2f}x)")
                if ratio < 1 and torch_best.get("operators"):
                    note += "; " + _where_torch_spends(torch_best["operators"])
                notes.append(note)
            notes += _mode_notes(rows, summary["config"], model, stage)
            if torch_best and "compute_ceiling_fraction" in torch_best:
                notes.append(f"{model} {stage}: torch {torch_best['mode']} reaches "
                             f"{torch_best['compute_ceiling_fraction']:.0%} of the matmul peak")
        decode = best(rows, kind="decode", model=model)
        notes += [_pipeline_note(rows, pipeline, decode, cores) for pipeline in rows
                  if pipeline["kind"] == "pipeline" and pipeline["model"] == model]
    return notes
