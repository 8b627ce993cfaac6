"""A suite's numbers turned into findings: the summary rows (with ceiling fractions, pipeline vs step) and the
plain-language diagnosis. Rendering (tables, plots, comparisons) is :mod:`videoml.bench.report`."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from pathlib import Path

from videoml.bench.ceilings import TRAIN_FLOPS_FACTOR
from videoml.bench.records import Run, best, load_runs
from videoml.models.registry import model_input
from videoml.vocab import ModelStage, choices


@dataclass
class Summary:
    """A suite's results: its config, the ceilings, every run (with what was derived) and the notes."""
    config: dict
    ceilings: dict
    runs: list[Run]
    notes: list[str]

    def as_json(self) -> dict:
        return {"config": self.config, "ceilings": self.ceilings, "rows": [r.row() for r in self.runs],
                "notes": self.notes}


def _per_cpu(run: Run) -> float | None:
    return 1 / run.cpu_ms_per_clip if run.cpu_ms_per_clip else None


def _per_video(run: Run) -> float | None:
    return run.clips_per_s / run.clips_per_unit if run.clips_per_unit else None


# What a run is held against: (the runs it applies to, the baseline's cell as changes to its own, the ratio's name,
# the rate compared). Runs without the baseline in the suite get no ratio.
BASELINES = (
    ({"kind": "open_random_clip"}, {"backend": "pytorchvideo"}, "speedup_vs_pytorchvideo", Run.clips_per_s.fget),
    ({"kind": "test_views"}, {"backend": "pytorchvideo"}, "speedup_vs_pytorchvideo", Run.clips_per_s.fget),
    ({"kind": "decode"}, {"data": "original", "clips_per_video": 1}, "ratio_to_original", _per_cpu),
    ({"kind": "infer", "stage": "videoml_infer"}, {"stage": "pytorchvideo_loop", "batch_size": None, "workers": None},
     "speedup_vs_pytorchvideo", _per_video),
    ({"kind": "infer", "stage": "videoml_infer"}, {"stage": "model_only", "workers": None}, "clips_vs_model_only",
     Run.clips_per_s.fget),
    ({"kind": "infer", "stage": "model_only"}, {"stage": "model_only_eager"}, "speedup_vs_eager", Run.clips_per_s.fget),
    ({"kind": "infer", "stage": "videoml_infer_ray"}, {"stage": "videoml_infer"}, "ray_vs_local", _per_video),
)


def _derive(run: Run, runs: dict[str, Run], ceilings: dict) -> None:
    """Fractions of the ceilings, ratios to the baselines, a pipeline against its train step alone."""
    cell, derived = run.cell, run.derived
    flops = ceilings["flops_per_clip"].get(cell.model)
    peak = ceilings["peaks"].get(cell.precision)
    if cell.kind == "model" and flops and peak:
        per_clip = flops * (TRAIN_FLOPS_FACTOR if cell.stage in ("train_step", "fit_step") else 1)
        derived["achieved_flops_per_s"] = run.clips_per_s * per_clip
        derived["compute_ceiling_fraction"] = derived["achieved_flops_per_s"] / peak["flops_per_s"]
    if run.ceiling:
        derived.update(decode_ceiling_clips_per_s=run.ceiling["clips_per_s"],
                       decode_ceiling_fraction=run.clips_per_s / run.ceiling["clips_per_s"],
                       frames_decoded_per_clip=run.ceiling["frames_decoded_per_clip"])
    if run.clips_per_unit:
        derived["videos_per_s"] = _per_video(run)
    for applies, changes, name, rate in BASELINES:
        base = runs.get(replace(cell, **changes).name) if run.matches(**applies) else None
        if base and base is not run and rate(run) and rate(base):
            derived[name] = rate(run) / rate(base)
    step = cell.kind == "pipeline" and best(runs.values(), kind="model", stage="train_step", model=cell.model,
                                            framework=cell.framework, batch_size=cell.batch_size)
    if step:  # end to end against the same train step alone: what the data path leaves of the model's speed
        derived["pipeline_to_step"] = run.clips_per_s / step.clips_per_s


def summarize_suite(folder: Path, config: dict, ceilings: dict) -> Summary:
    runs = load_runs(folder)
    for run in runs.values():
        _derive(run, runs, ceilings)
    summary = Summary(config, ceilings, list(runs.values()), [])
    summary.notes = diagnose(summary)
    return summary


_HEAVY = ("conv", "mm", "matmul", "linear", "addmm", "bmm")


def _where_torch_spends(run: Run) -> str:
    """Why a PyTorch step is slow, from its profile: the share of time outside convolutions and matrix products
    (separate elementwise passes over the activations, which TensorFlow's graph optimiser fuses into them; in a
    compiled mode, the passes Inductor fused among themselves but not into the convolutions)."""
    shown = ", ".join(f"{name} {share:.0%}" for name, share in run.operators)
    heavy = sum(share for name, share in run.operators if any(h in name.lower() for h in _HEAVY))
    text = f"PyTorch's step: {shown}"
    if heavy < 0.8:
        where = ("Inductor's fused passes (BatchNorm, activations, residual adds) that it does not fold into the "
                 "convolutions") if "compile" in (run.cell.mode or "").split("+") else (
                 "separate passes (BatchNorm, activations, residual adds) that TensorFlow's graph optimiser fuses into "
                 "the convolutions: compare the compile mode")
        text += f"; {1 - heavy:.0%} of it outside convolutions and matrix products, in {where}"
    return text


def _pipeline_note(runs: list[Run], pipeline: Run, decode: Run | None, cores: int) -> str:
    """Where a data -> model pipeline stands: waiting for data (and what would help) or not (and why)."""
    cell, wait, rate = pipeline.cell, pipeline.data_wait or 0.0, pipeline.clips_per_s
    text = (f"{cell.model} pipeline ({cell.framework}, {cell.workers} workers): {rate:.1f} clips/s, waiting for "
            f"data {wait:.0%} of the time")
    step = best(runs, kind="model", framework=cell.framework, model=cell.model, stage="train_step", mode=cell.mode)
    if wait > 0.2 and decode:
        per_worker = decode.clips_per_s
        needed = math.ceil(step.clips_per_s / per_worker) if step else None
        advice = []
        if needed and needed <= cell.workers:
            advice.append(f"decoding alone would keep up ({cell.workers} worker(s) decode "
                          f"{cell.workers * per_worker:.1f} clips/s against {step.clips_per_s:.1f} needed), so the "
                          "loader's own overhead is the limit (loading in threads, as tf.data's Python functions do, "
                          "shares the GIL and the cores with the training loop)")
        elif needed and needed <= cores:
            advice.append(f"use {needed} loader workers (one decodes {per_worker:.1f} clips/s, the step "
                          f"takes {step.clips_per_s:.1f})")
        elif needed:
            advice.append(f"{needed} workers would be needed but there are {cores} cores: decode at a "
                          "lower resolution or use a faster backend")
        fraction = decode.derived.get("decode_ceiling_fraction", 1)
        if fraction < 0.5:
            advice.append(f"the {decode.cell.backend} reader reaches {fraction:.0%} of FFmpeg's speed on these "
                          "files: try another backend")
        frames, spec = decode.derived.get("frames_decoded_per_clip"), model_input(cell.model)
        span = (spec.frames - 1) * spec.stride + 1
        if frames and frames > 2 * span:
            advice.append(f"each clip decodes {frames:.0f} frames (from the key frame before it) for a "
                          f"span of {span}: prepare the data (videoml data prepare) for shorter GOPs")
        text += "; data-bound" + (": " + "; ".join(advice) if advice else "")
    elif wait <= 0.2:
        text += "; not waiting for data"
        if step and rate < 0.7 * step.clips_per_s:
            text += (f", but the train step runs at {rate / step.clips_per_s:.0%} of its speed alone: the loader "
                     f"workers compete with it for the {cores} cores (more cores, or cheaper decoding: videoml data "
                     "prepare, data.clips_per_video)")
        else:
            text += ": the model is the limit (a faster execution mode or device helps, more workers do not)"
    return text


def _mode_notes(runs: list[Run], config: dict, model: str, stage: str) -> list[str]:
    """Each framework's modes against its first listed one, per batch size: what a mode is worth."""
    notes = []
    for framework, modes in config["frameworks"].items():
        for batch in config["batch_sizes"]:
            found = {m: best(runs, kind="model", framework=framework, model=model, stage=stage, mode=m,
                             batch_size=batch) for m in modes}
            if len(modes) < 2 or not found[modes[0]]:
                continue
            base = found[modes[0]].clips_per_s
            ratios = [f"{m} {found[m].clips_per_s / base:.2f}x" for m in modes[1:] if found[m]]
            notes.append(f"{model} {stage}, batch {batch}, {framework}: " + ", ".join(ratios)
                         + f" the clips/s of {modes[0]}")
    return notes


def _model_notes(runs: list[Run], config: dict, model: str) -> list[str]:
    """Who wins per stage (and why PyTorch trails, from its profile), what each mode is worth, the compute
    ceiling."""
    notes = []
    for stage in choices(ModelStage):
        torch_best = best(runs, kind="model", framework="torch", model=model, stage=stage)
        tf_best = best(runs, kind="model", framework="tf", model=model, stage=stage)
        if torch_best and tf_best:
            ratio = torch_best.clips_per_s / tf_best.clips_per_s
            verdict = "PyTorch leads" if ratio >= 1 else "TensorFlow leads"
            note = (f"{model} {stage}: {verdict}, best modes torch {torch_best.cell.mode} {torch_best.clips_per_s:.1f}"
                    f" vs tf {tf_best.cell.mode} {tf_best.clips_per_s:.1f} clips/s ({ratio:.2f}x)")
            if ratio < 1 and torch_best.operators:
                note += "; " + _where_torch_spends(torch_best)
            notes.append(note)
        notes += _mode_notes(runs, config, model, stage)
        if torch_best and "compute_ceiling_fraction" in torch_best.derived:
            notes.append(f"{model} {stage}: torch {torch_best.cell.mode} reaches "
                         f"{torch_best.derived['compute_ceiling_fraction']:.1%} of the measured "
                         f"{torch_best.cell.precision} peak")
    return notes


def _reading_notes(runs: list[Run]) -> list[str]:
    """The fastest reader of each reading stage, against FFmpeg or PyTorchVideo; memory that grows."""
    notes = []
    for kind, videos in dict.fromkeys((r.cell.kind, r.cell.videos) for r in runs if r.cell.kind in
                                      ("random_clip", "open_random_clip", "test_views")):
        top = best([r for r in runs if r.cell.backend != "pytorchvideo"], kind=kind, videos=videos)
        versus = [f"{top.derived[k]:{f}}{what}" for k, f, what in (
            ("decode_ceiling_fraction", ".0%", " of FFmpeg's speed"), ("speedup_vs_pytorchvideo", ".1f",
                                                                       "x PyTorchVideo's speed")) if k in top.derived]
        notes.append(f"{kind} ({videos} videos): {top.cell.backend} fastest, {top.clips_per_s:.1f} {top.unit}s/s"
                     + (f", {', '.join(versus)}" if versus else ""))
    notes += [f"memory: {r.cell.backend} resident memory {r.rss_growth_mb:+.1f} MB over {r.reads} reads"
              for r in runs if r.cell.kind == "memory" and r.rss_growth_mb > 20]
    return notes


def _infer_notes(runs: list[Run]) -> list[str]:
    notes = []
    for run in runs:
        if run.matches(kind="infer", stage="videoml_infer"):
            versus = [f"{run.derived[k]:{f}}{what}" for k, f, what in (
                ("speedup_vs_pytorchvideo", ".1f", "x the videos/s of PyTorchVideo's tutorial loop"),
                ("clips_vs_model_only", ".0%", " of the model alone's clips/s")) if k in run.derived]
            notes.append(f"{run.cell.model} videoml infer: {run.derived['videos_per_s']:.2f} videos/s"
                         + (f", {', '.join(versus)}" if versus else ""))
        if run.matches(kind="infer", stage="model_only") and "speedup_vs_eager" in run.derived:
            notes.append(f"{run.cell.model} fast inference graph (BatchNorm folded): "
                         f"{run.derived['speedup_vs_eager']:.2f}x the eager model's clips/s")
        if run.matches(kind="infer", stage="videoml_infer_ray") and "ray_vs_local" in run.derived:
            notes.append(f"{run.cell.model} videoml infer --engine ray: {run.derived['videos_per_s']:.2f} videos/s, "
                         f"{run.derived['ray_vs_local']:.2f}x the local engine's")
    return notes


def diagnose(summary: Summary) -> list[str]:
    """Plain-language findings computed from the numbers: who wins per model and stage, what each execution mode is
    worth against a framework's first, where pipelines wait for data and what would help, how far each model stands
    from the compute ceiling; the fastest reader per reading stage; what videoml infer reaches."""
    runs, notes, cores = summary.runs, [], os.cpu_count() or 1
    for model in summary.config["models"]:
        notes += _model_notes(runs, summary.config, model)
        decode = best(runs, kind="decode", model=model)
        notes += [_pipeline_note(runs, pipeline, decode, cores) for pipeline in runs
                  if pipeline.matches(kind="pipeline", model=model)]
    return notes + _reading_notes(runs) + _infer_notes(runs)
