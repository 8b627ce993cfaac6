"""The PyTorch side of the model stages: a registry model's forward and train step in an execution mode.

A mode combines a memory format (``contiguous`` or ``channels_last_3d``), a precision (fp32, or bf16 / fp16
autocast), ``optimized`` (the forward as ``videoml infer`` runs it: the fast inference graph, BatchNorm folded into
the convolutions, :mod:`videoml.models.optimize`; a forward-only mode) and ``torch.compile`` (off or on; with
``optimized``, as ``videoml infer --compile`` compiles: weights frozen), written
like ``cl3d+bf16+compile``. The same model, batch and input (random clips at the model's canonical size, already on
the device) for every mode. A train step is forward, cross-entropy, backward and an SGD step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from videoml.data.transforms import pack_pathways
from videoml.errors import UsageError
from videoml.models.optimize import before_compiling, compiled, fold_batchnorm
from videoml.models.registry import build_model, model_input
from videoml.runtime import MEMORY_FORMATS, autocast
from videoml.spec import InputSpec
from videoml.vocab import PRECISION_NAMES, check


# what a torch mode is made of, joined by "+" (``cl3d+bf16+compile``); eager and contiguous are the defaults
MODE_PARTS = ("cl3d", "channels_last_3d", *PRECISION_NAMES, "compile", "optimized", "eager", "contiguous")


@dataclass(frozen=True)
class Mode:
    memory_format: str = "contiguous"
    precision: str = "fp32"
    """a short name of :data:`videoml.vocab.PRECISION_NAMES` (the modes' names are written with them)"""
    compile: bool = False
    optimized: bool = False

    @classmethod
    def parse(cls, text: str) -> "Mode":
        """``fp32``, ``cl3d``, ``cl3d+bf16``, ``bf16+compile``, ...: the parts in any order."""
        mode = {}
        for part in text.split("+"):
            if part in ("cl3d", "channels_last_3d"):
                mode["memory_format"] = "channels_last_3d"
            elif part in PRECISION_NAMES:
                mode["precision"] = part
            elif part in ("compile", "optimized"):
                mode[part] = True
            else:
                check(part, MODE_PARTS, "mode part", where=text)
        return cls(**mode)

    @property
    def name(self) -> str:
        parts = (["cl3d"] if self.memory_format == "channels_last_3d" else []) + [self.precision]
        return "+".join(parts + (["optimized"] if self.optimized else []) + (["compile"] if self.compile else []))

    def measures(self, stage: str) -> bool:
        """Whether the mode has the stage: ``optimized`` is an inference graph, with no train step."""
        return stage == "forward" or not self.optimized


def random_clips(spec: InputSpec, batch: int, device: str | torch.device = "cpu", dtype=torch.float32,
                 memory_format=torch.contiguous_format):
    """A batch of random clips at ``spec``'s input, (B, C, T, H, W) (SlowFast: ``[slow, fast]``): normal floats,
    or uint8 pixels as decoding gives them."""
    shape = (batch, 3, spec.frames, spec.crop, spec.crop)
    if dtype == torch.uint8:
        video = torch.randint(0, 256, shape, dtype=torch.uint8, device=device)
    else:
        video = torch.randn(shape, dtype=dtype, device=device)
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
    if mode.compile:
        before_compiling()
    step_model = inference = torch.compile(model) if mode.compile else model
    if mode.optimized:  # the forward as ``videoml infer`` runs it (--compile: compiled with the weights frozen)
        inference = (fold_batchnorm(model) or model).to(device, memory_format=memory_format)
        inference = compiled(inference) if mode.compile else inference
    video = random_clips(model_input(name), batch_size, device, memory_format=memory_format)
    labels = torch.randint(0, classes, (batch_size,), device=device)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def forward(clips=video):
        model.eval()
        with torch.inference_mode(), autocast(device, PRECISION_NAMES[mode.precision]):
            inference(clips)

    def train_step(clips=video, targets=labels):
        model.train()
        with autocast(device, PRECISION_NAMES[mode.precision]):
            loss = F.cross_entropy(step_model(clips).float(), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return model, {"forward": forward, "train_step": train_step}
