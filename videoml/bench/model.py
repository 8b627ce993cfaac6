"""``videoml bench model``: forward (inference) and train-step clips/s of registry models per execution mode.

A mode combines a memory format (``contiguous`` or ``channels_last_3d``), a precision (fp32, or bf16 / fp16
autocast) and ``torch.compile`` (off or on), written like ``cl3d+bf16+compile``. The same model, batch and input
(random clips at the model's canonical size, already on the device) for every mode.

Method (:mod:`videoml.bench.measure`): for each (model, mode, stage), ``warmup`` untimed steps, then ``repeats``
rounds of ``steps`` timed steps, the device synchronised around each round; the median over rounds with its
interquartile range is reported, with the peak device memory. A train step is forward, cross-entropy, backward and
an SGD step.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from videoml.bench.common import write as write_results
from videoml.bench.measure import Timing, summarize, time_rounds
from videoml.data.transforms import pack_pathways
from videoml.environment import environment
from videoml.errors import UsageError
from videoml.models.registry import build_model, model_input
from videoml.runtime import MEMORY_FORMATS, parse_device
from videoml.profiling import Profile, ProfileSchedule

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class Mode:
    memory_format: str = "contiguous"
    precision: str = "fp32"
    compile: bool = False

    @classmethod
    def parse(cls, text: str) -> "Mode":
        """``fp32``, ``cl3d``, ``cl3d+bf16``, ``bf16+compile``, ...: the parts in any order."""
        mode = {}
        for part in text.split("+"):
            if part in ("cl3d", "channels_last_3d"):
                mode["memory_format"] = "channels_last_3d"
            elif part in PRECISIONS:
                mode["precision"] = part
            elif part == "compile":
                mode["compile"] = True
            elif part not in ("eager", "contiguous"):
                raise UsageError(f"unknown mode part {part!r} in {text!r} (known: cl3d, fp32, bf16, fp16, compile)")
        return cls(**mode)

    @property
    def name(self) -> str:
        parts = (["cl3d"] if self.memory_format == "channels_last_3d" else []) + [self.precision]
        return "+".join(parts + (["compile"] if self.compile else []))


@dataclass(frozen=True)
class ModelBench:
    models: tuple[str, ...] = ("x3d_tiny", "x3d_xs")
    modes: tuple[str, ...] = ("fp32", "cl3d", "cl3d+bf16", "cl3d+compile")
    batch_size: int = 8
    device: str = "cpu"
    warmup: int = 3
    steps: int = 5
    repeats: int = 5
    classes: int = 400
    out: str = "runs/bench/model"
    profile: bool = False
    """also trace each model and mode's train step into <out>/profile-<model>-<mode>/"""
    seed: int = 0


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _clips(name: str, batch: int, device: torch.device, memory_format) -> torch.Tensor | list[torch.Tensor]:
    spec = model_input(name)
    video = torch.randn(batch, 3, spec.frames, spec.crop, spec.crop, device=device)
    video = pack_pathways(video, spec.slowfast_alpha)
    if isinstance(video, list):
        return [v.contiguous(memory_format=memory_format) for v in video]
    return video.contiguous(memory_format=memory_format)


def torch_steps(name: str, mode: Mode, batch_size: int, device: torch.device, classes: int, seed: int = 0):
    """The model (random weights from ``seed``) and its timed steps in ``mode``: ``{"forward": fn, "train_step":
    fn}``, by default on one batch of random clips at the model's canonical input, already on the device (or on
    ``fn(video, labels)``: normalised clips in the mode's memory format). A train step is forward, cross-entropy,
    backward and an SGD step (momentum 0.9)."""
    if mode.precision == "fp16" and device.type != "cuda":
        raise UsageError("fp16 autocast needs a CUDA device (use bf16 on CPU)")
    torch.manual_seed(seed)
    memory_format = MEMORY_FORMATS[mode.memory_format]
    model = build_model(name, classes).to(device, memory_format=memory_format)
    step_model = torch.compile(model) if mode.compile else model
    video = _clips(name, batch_size, device, memory_format)
    labels = torch.randint(0, classes, (batch_size,), device=device)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    dtype = PRECISIONS[mode.precision]
    autocast = (lambda: torch.autocast(device.type, dtype=dtype)) if dtype else contextlib.nullcontext

    def forward(clips=video):
        model.eval()
        with torch.inference_mode(), autocast():
            step_model(clips)

    def train_step(clips=video, targets=labels):
        model.train()
        with autocast():
            loss = F.cross_entropy(step_model(clips).float(), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return model, {"forward": forward, "train_step": train_step}


def measure(name: str, mode: Mode, bench: ModelBench) -> list[dict]:
    """Forward and train-step rows for one model in one mode."""
    device = parse_device(bench.device)
    _, steps = torch_steps(name, mode, bench.batch_size, device, bench.classes, bench.seed)
    timing = Timing(bench.warmup, bench.steps, bench.repeats, max_spread=None)
    rows = []
    for stage, fn in steps.items():
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        rounds = time_rounds(fn, timing, lambda: _sync(device))
        stats = summarize(rounds, bench.batch_size)
        rows.append({"model": name, "mode": mode.name, "stage": stage, "batch": bench.batch_size,
                     "clips_per_s": round(stats["clips_per_s"], 2),
                     "ms_per_step_median": round(1000 * stats["median_s"], 3),
                     "ms_per_step_iqr": [round(1000 * q, 3) for q in stats["iqr_s"]],
                     "spread": round(stats["spread"], 3),
                     "peak_memory_mb": round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
                     if device.type == "cuda" else None,
                     "samples_ms": [round(1000 * r, 3) for r in rounds]})
    if bench.profile:
        schedule = ProfileSchedule(skip_first=0, wait=0, warmup=1, active=3)
        with Profile(Path(bench.out) / f"profile-{name}-{mode.name}", device.type, schedule) as profile:
            for _ in range(4):
                steps["train_step"]()
                _sync(device)
                profile.step()
    return rows


def run(bench: ModelBench) -> dict:
    import videoml  # noqa: F401  (compat before pytorchvideo)

    modes = [Mode.parse(m) for m in bench.modes]
    rows = [row for name in bench.models for mode in modes for row in measure(name, mode, bench)]
    return {"config": asdict(bench), "environment": environment(bench.device), "rows": rows}


def table(results: dict) -> str:
    """Rows = model and mode; clips/s [IQR as % of the median] per stage, and each mode's speed-up over the first."""
    rows = results["rows"]
    first = results["config"]["modes"][0]
    base = {(r["model"], r["stage"]): r["clips_per_s"] for r in rows if r["mode"] == Mode.parse(first).name}
    lines = ["| model | mode | forward clips/s | train step clips/s | forward vs " + first + " | train vs " + first + " |",
             "|---|---|---|---|---|---|"]
    by_key: dict[tuple[str, str], dict[str, dict]] = {}
    for r in rows:
        by_key.setdefault((r["model"], r["mode"]), {})[r["stage"]] = r
    for (model, mode), stages in by_key.items():
        cells = [f"{stages[s]['clips_per_s']:g} (±{100 * stages[s]['spread'] / 2:.0f} %)" for s in ("forward", "train_step")]
        ratios = [f"{stages[s]['clips_per_s'] / base[(model, s)]:.2f}x" if (model, s) in base else ""
                  for s in ("forward", "train_step")]
        lines.append(f"| {model} | {mode} | {cells[0]} | {cells[1]} | {ratios[0]} | {ratios[1]} |")
    return "\n".join(lines)


def write(results: dict, out: str | os.PathLike) -> Path:
    return write_results(results, out, "model", table(results))
