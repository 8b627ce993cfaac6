"""``videoml bench model``: forward (inference) and train-step clips/s of registry models per execution mode.

A mode combines a memory format (``contiguous`` or ``channels_last_3d``), a precision (fp32, or bf16 / fp16
autocast) and ``torch.compile`` (off or on), written like ``cl3d+bf16+compile``. The same model, batch and input
(random clips at the model's canonical size, already on the device) for every mode. A train step is forward,
cross-entropy, backward and an SGD step.

The benchmark is a preset of the suite (:meth:`ModelBench.suite`): PyTorch model cells only, measured and written as
every suite is (:mod:`videoml.bench.suite`: one JSON per cell with the timing statistics, the compute ceiling,
``table.md``, plots).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from videoml.bench.common import random_clips
from videoml.errors import UsageError
from videoml.models.registry import build_model, model_input
from videoml.runtime import MEMORY_FORMATS, autocast
from videoml.vocab import Precision, choices


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
            elif part in choices(Precision):
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
    """registry names"""
    modes: tuple[str, ...] = ("fp32", "cl3d", "cl3d+bf16", "cl3d+compile")
    """execution modes, e.g. fp32, cl3d, cl3d+bf16, bf16+compile"""
    batch_size: int = 8
    device: str = "cpu"
    warmup: int = 3
    """untimed steps first"""
    steps: int = 5
    """steps a timed round"""
    repeats: int = 5
    """timed rounds"""
    classes: int = 400
    out: str = "runs/bench/model"
    """results directory"""
    profile: bool = False
    """also trace each model and mode's step (PyTorch Profiler) into OUT/profile-<cell>/"""
    seed: int = 0

    def suite(self):
        """The suite that measures this: PyTorch model cells, every mode, forward and train step."""
        from videoml.bench.suite import SuiteConfig

        timing = {"warmup": self.warmup, "steps": self.steps, "repeats": self.repeats, "max_spread": None}
        return SuiteConfig(name="model", device=self.device, models=list(self.models),
                           frameworks={"torch": list(self.modes)}, batch_sizes=[self.batch_size],
                           stages=["forward", "train_step"], classes=self.classes, seed=self.seed, timing=timing,
                           profile=self.profile)


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
    video = random_clips(model_input(name), batch_size, device, memory_format=memory_format)
    labels = torch.randint(0, classes, (batch_size,), device=device)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def forward(clips=video):
        model.eval()
        with torch.inference_mode(), autocast(device, mode.precision):
            step_model(clips)

    def train_step(clips=video, targets=labels):
        model.train()
        with autocast(device, mode.precision):
            loss = F.cross_entropy(step_model(clips).float(), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return model, {"forward": forward, "train_step": train_step}
